//! Finding series of pods that are gone: dropped from the metrics once a grace
//! period has let Prometheus scrape their last values, so that pod churn (rollouts,
//! CronJobs) does not grow the daemon's series without bound.
#![forbid(unsafe_code)]

/// How long the series of a pod's binary outlive its last process: several scrape
/// intervals, so the last increase is seen.
pub const GRACE_NS: u64 = 5 * 60 * 1_000_000_000;

/// A binary's series in a pod whose processes are all gone: (binary, namespace,
/// pod, container).
pub type Place = (String, [String; 3]);

#[derive(Default)]
pub struct PodSeries {
    /// Places whose last process went, with when their series fall due.
    gone: Vec<(u64, Place)>,
}

impl PodSeries {
    /// A process of `binary` in the pod `labels` is gone. Processes outside
    /// Kubernetes share one set of series per binary, which stays.
    pub fn process_gone(&mut self, binary: &str, labels: [&str; 3], now_ns: u64) {
        if labels[1].is_empty() {
            return;
        }
        let place = (binary.to_string(), labels.map(str::to_string));
        self.gone.retain(|(_, p)| *p != place);
        self.gone.push((now_ns + GRACE_NS, place));
    }

    /// The places due for removal now: grace over and no process of theirs traced
    /// (`live`) any more.
    pub fn due(&mut self, now_ns: u64, live: impl Fn(&Place) -> bool) -> Vec<Place> {
        let mut due = Vec::new();
        self.gone.retain(|(at, place)| {
            if *at > now_ns {
                return true;
            }
            if !live(place) {
                due.push(place.clone());
            }
            false
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_fall_due_after_the_grace_unless_back() {
        let mut s = PodSeries::default();
        s.process_gone("api", ["shop", "api-0", "api"], 0);
        s.process_gone("api", ["shop", "api-1", "api"], 10);
        s.process_gone("svc", ["", "", ""], 0);
        assert!(s.due(GRACE_NS - 1, |_| false).is_empty());
        let due = s.due(GRACE_NS, |_| false);
        assert_eq!(due, [("api".to_string(), ["shop", "api-0", "api"].map(String::from))]);
        // api-1 has a process again when its grace ends: its series stay.
        assert!(s.due(GRACE_NS + 10, |p| p.1[1] == "api-1").is_empty());
        assert!(s.due(u64::MAX, |_| false).is_empty(), "nothing left");
    }

    #[test]
    fn a_pod_gone_again_restarts_its_grace() {
        let mut s = PodSeries::default();
        s.process_gone("api", ["shop", "api-0", "api"], 0);
        s.process_gone("api", ["shop", "api-0", "api"], 100);
        assert!(s.due(GRACE_NS, |_| false).is_empty());
        assert_eq!(s.due(GRACE_NS + 100, |_| false).len(), 1);
    }
}
