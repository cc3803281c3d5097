//! The overhead budget: its syntax, and the file it may be read from again on SIGHUP.

use std::fmt;

/// What the probes may cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// No limit: every probe attached all the time.
    Off,
    /// A share of the traced process's own CPU time (0.01: 1%).
    Share(f64),
    /// CPU seconds per second, whatever the process does.
    CpuPerSecond(f64),
}

impl Default for Budget {
    fn default() -> Self {
        Self::Share(0.01)
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Share(share) => write!(f, "{}%", share * 100.0),
            Self::CpuPerSecond(cpu) => write!(f, "{}ms/s", cpu * 1000.0),
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = String;

    /// `off`, a share of the process's CPU (`1%`), or CPU time per second
    /// (`5ms/s`, `0.005s/s`).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let number = |n: &str| -> Result<f64, String> {
            n.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| {
                format!("invalid overhead budget {text:?}: use off, a percentage (1%) or CPU per second (5ms/s)")
            })
        };
        if text == "off" {
            Ok(Self::Off)
        } else if let Some(p) = text.strip_suffix('%') {
            Ok(Self::Share(number(p)? / 100.0))
        } else if let Some(ms) = text.strip_suffix("ms/s") {
            Ok(Self::CpuPerSecond(number(ms)? / 1000.0))
        } else if let Some(s) = text.strip_suffix("s/s") {
            Ok(Self::CpuPerSecond(number(s)?))
        } else {
            Err(number("").unwrap_err())
        }
    }
}

/// The budget written in `file` (one line, as `--overhead-budget`: `2%`, `5ms/s`,
/// `off`).
fn read_budget(file: &std::path::Path) -> Result<Budget, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    text.trim().parse()
}

/// The budget to start with: the one in `file` when given, else `flag`.
pub fn starting_budget(flag: Budget, file: Option<&std::path::Path>) -> Result<Budget, String> {
    file.map_or(Ok(flag), read_budget)
}

/// On SIGHUP: the budget in `file` again, saying on stderr what became of it
/// (a bad file keeps the budget in force).
pub fn reload_budget(file: Option<&std::path::Path>) -> Option<Budget> {
    let Some(file) = file else {
        tracing::warn!("SIGHUP: no --overhead-budget-file to read a budget from");
        return None;
    };
    match read_budget(file) {
        Ok(budget) => {
            tracing::info!("overhead budget now {budget} (from {})", file.display());
            Some(budget)
        }
        Err(e) => {
            tracing::warn!("SIGHUP: keeping the overhead budget: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!("1%".parse(), Ok(Budget::Share(0.01)));
        assert_eq!("off".parse(), Ok(Budget::Off));
        assert_eq!("5ms/s".parse(), Ok(Budget::CpuPerSecond(0.005)));
        assert_eq!("0.25s/s".parse(), Ok(Budget::CpuPerSecond(0.25)));
        for bad in ["", "%", "-1%", "1", "x%", "nan%", "0%"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
        assert_eq!(Budget::default().to_string(), "1%");
    }
}
