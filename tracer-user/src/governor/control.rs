//! The governor's control loop, free of clocks and kernels: from each cycle's hit
//! counts, attached times and process CPU time, the share of time each probe stays
//! attached (its duty) so that the estimated overhead fits the budget, and how long
//! each probe is attached in the next cycle.
#![forbid(unsafe_code)]

use super::Budget;

/// The least allowance a relative budget grants, in CPU seconds per second (about
/// 200 emulated hits per second): a process that barely runs still has its rare
/// probes attached, and /proc's CPU times (10 ms ticks) cannot tell less apart.
pub const MIN_ALLOWANCE: f64 = 1e-4;

/// The share of a budget the estimated probe cost is planned to. The estimate counts
/// what can be measured, the traps (calibrated on a tight loop) and the eBPF
/// programs' run time; a real program pays about as much again that it cannot see:
/// the trap path and the caches after it run cold, links are switched, ghostrace's
/// threads take CPU. On the bench (docs/governor.md) the measured slowdown was
/// 1.2–2.7 times the estimate; planning for half the budget keeps it within.
pub const PLANNED_SHARE: f64 = 0.5;

/// A computed duty this close to 1 is rounded up to 1: a few percent of budget is
/// not worth a switch twice a cycle.
const FULL_DUTY: f64 = 0.98;

/// What one probe did during the last cycle.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeCycle {
    /// Hits counted during the cycle.
    pub hits: u64,
    /// Seconds it was attached during the cycle.
    pub attached_s: f64,
    /// CPU seconds one hit costs (calibrated, by instruction kind).
    pub cost_s: f64,
}

/// What the last cycle cost, as the controller estimates it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// CPU seconds the probes cost the process.
    pub probe_cpu_s: f64,
    /// CPU seconds the process spent on its own work (its CPU time minus the probes').
    pub own_cpu_s: f64,
}

impl Estimate {
    /// The slowdown the probes add: probe CPU over the process's own CPU.
    pub fn ratio(&self) -> f64 {
        if self.own_cpu_s > 0.0 { self.probe_cpu_s / self.own_cpu_s } else if self.probe_cpu_s > 0.0 { 1.0 } else { 0.0 }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct ProbeState {
    /// Hits per second while attached: rises at once, decays by halves, so a
    /// burst is answered in one cycle and a quiet spell is trusted slowly.
    rate: f64,
    cost_s: f64,
    duty: f64,
    /// Attached time owed by earlier cycles (duties shorter than one switch quantum
    /// are served as one quantum every few cycles).
    credit_s: f64,
    /// Seconds to stay attached in the next cycle.
    next_s: f64,
}

/// The duty of every governed probe, updated once per cycle.
#[derive(Debug)]
pub struct Controller {
    probes: Vec<ProbeState>,
    /// The process's own CPU seconds per second, estimated like `rate` but the
    /// other way round (a drop counts at once: it lowers a relative budget).
    own_cpu_rate: Option<f64>,
    cycle_s: f64,
    /// Shortest time worth attaching for (the switch granularity).
    quantum_s: f64,
}

fn full(cycle_s: f64) -> ProbeState {
    ProbeState { duty: 1.0, next_s: cycle_s, ..ProbeState::default() }
}

impl Controller {
    /// `probes` probes, all attached, governed in cycles of `cycle_s` seconds and
    /// switched `quantum_s` seconds apart at the finest.
    pub fn new(probes: usize, cycle_s: f64, quantum_s: f64) -> Self {
        Self { probes: vec![full(cycle_s); probes], own_cpu_rate: None, cycle_s, quantum_s }
    }

    /// More probes to govern (they start attached).
    pub fn grow(&mut self, probes: usize) {
        self.probes.resize(probes.max(self.probes.len()), full(self.cycle_s));
    }

    /// Every probe's share of time attached, as planned.
    pub fn duties(&self) -> impl Iterator<Item = f64> + '_ {
        self.probes.iter().map(|p| p.duty)
    }

    /// Seconds each probe stays attached from the start of the next cycle.
    pub fn attach_for(&self) -> impl Iterator<Item = f64> + '_ {
        self.probes.iter().map(|p| p.next_s)
    }

    /// Feeds one cycle of `cycle_s` seconds in which the process used `cpu_s` CPU
    /// seconds; returns the cycle's estimate and sets the next cycle's duties.
    pub fn update(&mut self, budget: Budget, cycle_s: f64, cpu_s: f64, cycle: &[ProbeCycle]) -> Estimate {
        let quantum_s = self.quantum_s;
        self.grow(cycle.len());
        let probe_cpu_s: f64 = cycle.iter().map(|c| c.hits as f64 * c.cost_s).sum();
        let estimate = Estimate { probe_cpu_s, own_cpu_s: (cpu_s - probe_cpu_s).max(0.0) };
        for (state, c) in self.probes.iter_mut().zip(cycle) {
            state.cost_s = c.cost_s;
            // Too short a look says little; the next cycle looks again.
            if c.attached_s >= 0.5 * quantum_s && c.attached_s > 0.0 {
                let rate = c.hits as f64 / c.attached_s;
                state.rate = if rate >= state.rate { rate } else { 0.5 * (state.rate + rate) };
            }
        }
        if cycle_s > 0.0 {
            let own = estimate.own_cpu_s / cycle_s;
            self.own_cpu_rate = Some(match self.own_cpu_rate {
                Some(old) if own > old => 0.5 * (old + own),
                Some(_) => own,
                // The first cycle runs with every probe attached: a busy process then
                // does little work of its own but would use as much CPU untraced, and
                // its own CPU would leave the next cycle next to no budget. Its whole
                // CPU stands in until a governed cycle has been seen.
                None => cpu_s / cycle_s,
            });
        }
        self.plan(budget);
        self.schedule();
        estimate
    }

    /// Turns duties into attached times for the next cycle, in whole quanta; what
    /// rounding leaves out is owed to the following cycles.
    fn schedule(&mut self) {
        let (cycle_s, quantum_s) = (self.cycle_s, self.quantum_s);
        for p in &mut self.probes {
            if p.duty >= 1.0 {
                (p.next_s, p.credit_s) = (cycle_s, 0.0);
                continue;
            }
            p.credit_s += p.duty * cycle_s;
            p.next_s = ((p.credit_s / quantum_s).floor() * quantum_s).min(cycle_s);
            p.credit_s = (p.credit_s - p.next_s).min(cycle_s);
        }
    }

    /// CPU seconds per second the probes may cost.
    fn allowance(&self, budget: Budget) -> Option<f64> {
        match budget {
            Budget::Off => None,
            Budget::Share(share) => Some((PLANNED_SHARE * share * self.own_cpu_rate.unwrap_or(0.0)).max(MIN_ALLOWANCE)),
            Budget::CpuPerSecond(cpu) => Some(PLANNED_SHARE * cpu),
        }
    }

    /// Shares the allowance out max-min fairly: every probe whose full-time cost
    /// fits its fair share stays on all the time (the cold ones), the others get
    /// the same cost each, as a duty.
    fn plan(&mut self, budget: Budget) {
        let Some(mut left) = self.allowance(budget) else {
            self.probes.iter_mut().for_each(|p| p.duty = 1.0);
            return;
        };
        let mut order: Vec<usize> = (0..self.probes.len()).collect();
        let demand = |p: &ProbeState| p.rate * p.cost_s;
        order.sort_by(|&a, &b| demand(&self.probes[a]).total_cmp(&demand(&self.probes[b])));
        let mut level = None;
        for (done, &i) in order.iter().enumerate() {
            let state = &mut self.probes[i];
            let need = demand(state);
            let fair = level.unwrap_or(left / (order.len() - done) as f64);
            if level.is_none() && need <= fair {
                left -= need;
                state.duty = 1.0;
                continue;
            }
            // Every probe from here on costs more than the fair share.
            level = Some(fair);
            let duty = fair / need;
            state.duty = if duty >= FULL_DUTY { 1.0 } else { duty };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMULATED: f64 = 0.7e-6;
    const CYCLE: f64 = 1.0;
    const QUANTUM: f64 = 0.01;

    /// A process whose probes hit at `rates` per second while attached and which
    /// does `own` CPU seconds per second of its own work.
    struct Sim {
        rates: Vec<f64>,
        own: f64,
    }

    impl Sim {
        /// Runs one cycle attached for `attached`; returns what the controller is fed.
        fn cycle(&self, attached: &[f64]) -> (f64, Vec<ProbeCycle>) {
            let cycle: Vec<ProbeCycle> = self
                .rates
                .iter()
                .zip(attached)
                .map(|(&rate, &attached_s)| {
                    ProbeCycle { hits: (rate * attached_s) as u64, attached_s, cost_s: EMULATED }
                })
                .collect();
            let cpu = self.own * CYCLE + cycle.iter().map(|c| c.hits as f64 * c.cost_s).sum::<f64>();
            (cpu, cycle)
        }
    }

    /// Runs `cycles` cycles; returns each cycle's estimated ratio and the duties
    /// planned at its start.
    fn drive(c: &mut Controller, sim: &Sim, budget: Budget, cycles: usize) -> Vec<(f64, Vec<f64>)> {
        (0..cycles)
            .map(|_| {
                let duties: Vec<f64> = c.duties().collect();
                let attached: Vec<f64> = c.attach_for().collect();
                let (cpu, cycle) = sim.cycle(&attached);
                let estimate = c.update(budget, CYCLE, cpu, &cycle);
                (estimate.ratio(), duties)
            })
            .collect()
    }

    /// Mean ratio over `run`: quanta owed carry over, so single cycles swing.
    fn mean(run: &[(f64, Vec<f64>)]) -> f64 {
        run.iter().map(|r| r.0).sum::<f64>() / run.len() as f64
    }

    fn within(ratio: f64, budget: f64) -> bool {
        // The 10 ms switch quantum leaves a little slack.
        ratio <= budget * 1.1
    }

    #[test]
    fn a_hot_probe_is_cycled_and_cold_ones_stay_on() {
        let sim = Sim { rates: vec![2e6, 10.0, 0.0, 300.0], own: 1.0 };
        let mut c = Controller::new(4, CYCLE, QUANTUM);
        let run = drive(&mut c, &sim, Budget::Share(0.01), 21);
        // The first cycle measures with everything on; from the second on, under budget.
        assert!(run[0].0 > 1.0, "{:?}", run[0]);
        // It is planned to a share of the budget, less what whole quanta round off.
        let planned = PLANNED_SHARE * 0.01;
        assert!(within(mean(&run[1..]), planned) && mean(&run[1..]) > 0.8 * planned, "{}", mean(&run[1..]));
        for (_, duties) in &run[1..] {
            assert!(duties[0] < 0.01, "{duties:?}");
            assert_eq!(&duties[1..], &[1.0, 1.0, 1.0]);
        }
    }

    #[test]
    fn no_oscillation_once_settled() {
        let sim = Sim { rates: vec![2e6, 5e5, 1e4, 50.0], own: 1.5 };
        let mut c = Controller::new(4, CYCLE, QUANTUM);
        let run = drive(&mut c, &sim, Budget::Share(0.01), 30);
        let settled = &run[3].1;
        for (_, duties) in &run[3..] {
            for (a, b) in duties.iter().zip(settled) {
                assert!((a - b).abs() <= 1e-9 * b, "{duties:?} vs {settled:?}");
            }
        }
        assert!(within(mean(&run[1..]), 0.01), "{}", mean(&run[1..]));
        assert_eq!(settled[3], 1.0);
    }

    #[test]
    fn step_changes_are_followed_both_ways() {
        let mut sim = Sim { rates: vec![1e3, 100.0], own: 1.0 };
        let mut c = Controller::new(2, CYCLE, QUANTUM);
        let quiet = drive(&mut c, &sim, Budget::Share(0.01), 3);
        assert!(quiet.iter().all(|(_, d)| d == &[1.0, 1.0]), "cold probes stay on: {quiet:?}");
        // The loop turns hot: one cycle over budget, then under it.
        sim.rates[0] = 5e6;
        let hot = drive(&mut c, &sim, Budget::Share(0.01), 21);
        assert!(hot[0].0 > 0.01);
        assert!(within(mean(&hot[1..]), 0.01), "{}", mean(&hot[1..]));
        assert!(hot[1..].iter().all(|(_, d)| d[0] < 0.01 && d[1] == 1.0), "{hot:?}");
        // Cold again: the duty comes back to 1 (the rate estimate halves at each look).
        sim.rates[0] = 1e3;
        let cool = drive(&mut c, &sim, Budget::Share(0.01), 40);
        assert_eq!(cool.last().unwrap().1, vec![1.0, 1.0]);
    }

    #[test]
    fn a_burst_costs_one_cycle() {
        let mut sim = Sim { rates: vec![100.0; 3], own: 0.5 };
        let mut c = Controller::new(3, CYCLE, QUANTUM);
        drive(&mut c, &sim, Budget::Share(0.01), 3);
        sim.rates[2] = 4e6;
        let burst = drive(&mut c, &sim, Budget::Share(0.01), 1);
        assert!(burst[0].0 > 0.01);
        let after = drive(&mut c, &sim, Budget::Share(0.01), 20);
        assert!(within(mean(&after), 0.01), "{}", mean(&after));
        assert!(after.iter().all(|(_, d)| d[..2] == [1.0, 1.0]));
    }

    #[test]
    fn many_probes_converge_under_budget() {
        // 500 probes, rates spread over six orders of magnitude.
        let rates: Vec<f64> = (0..500).map(|i| 10f64.powf((i % 7) as f64) * (1.0 + (i % 13) as f64)).collect();
        let sim = Sim { rates: rates.clone(), own: 2.0 };
        let mut c = Controller::new(rates.len(), CYCLE, QUANTUM);
        let run = drive(&mut c, &sim, Budget::Share(0.01), 41);
        // The first governed cycle is planned on the first cycle's whole CPU, which
        // this simulation (probes that never slow the process) makes unphysically
        // large; from the next cycle on the process's own CPU counts.
        assert!(within(mean(&run[2..]), 0.01), "{}", mean(&run[2..]));
        let duties = &run[40].1;
        // Max-min fair: a probe hitting less than another never gets a smaller duty.
        for (i, j) in (0..rates.len()).flat_map(|i| (0..rates.len()).map(move |j| (i, j))) {
            if rates[i] < rates[j] {
                assert!(duties[i] >= duties[j], "{i}: {} vs {j}: {}", duties[i], duties[j]);
            }
        }
        assert!(duties.iter().zip(&rates).filter(|(_, r)| **r <= 10.0).all(|(d, _)| *d == 1.0));
    }

    #[test]
    fn absolute_budget_and_off() {
        let sim = Sim { rates: vec![1e6, 1.0], own: 1.0 };
        let mut c = Controller::new(2, CYCLE, QUANTUM);
        let run = drive(&mut c, &sim, Budget::CpuPerSecond(0.002), 21);
        // Own CPU is one second per second here, so the ratio is the absolute cost.
        assert!(within(mean(&run[1..]), 0.002), "{}", mean(&run[1..]));
        let off = drive(&mut c, &sim, Budget::Off, 2);
        assert!(off[1].1.iter().all(|&d| d == 1.0));
        assert!(c.attach_for().all(|s| s == CYCLE));
    }

    #[test]
    fn a_burst_in_the_fully_probed_first_cycle_leaves_a_cold_probe_on() {
        // A busy process whose hot loop traps nearly all the time during the first
        // 100 ms, and a cold site that happens to run a burst of 12 hits then.
        let mut c = Controller::new(2, CYCLE, QUANTUM);
        let first = [
            ProbeCycle { hits: 130_000, attached_s: 0.1, cost_s: 0.75e-6 },
            ProbeCycle { hits: 12, attached_s: 0.1, cost_s: 0.75e-6 },
        ];
        c.update(Budget::Share(0.01), 0.1, 0.1, &first);
        let duties: Vec<f64> = c.duties().collect();
        assert!(duties[0] < 0.01 && duties[1] == 1.0, "{duties:?}");
    }

    #[test]
    fn an_idle_process_keeps_its_rare_probes() {
        // Next to no CPU of its own: a handful of hits a second stays affordable.
        let sim = Sim { rates: vec![0.0, 20.0, 2.0], own: 0.0 };
        let mut c = Controller::new(3, CYCLE, QUANTUM);
        let run = drive(&mut c, &sim, Budget::Share(0.01), 5);
        assert!(run.iter().all(|(_, d)| d == &[1.0, 1.0, 1.0]), "{run:?}");
        // A busy probe in an idle process is still cut to the floor, after one cycle
        // planned on the whole CPU of the fully probed first one.
        let sim = Sim { rates: vec![1e6, 2.0], own: 0.0 };
        let mut c = Controller::new(2, CYCLE, QUANTUM);
        let run = drive(&mut c, &sim, Budget::Share(0.01), 5);
        assert!(run[1].1[0] <= PLANNED_SHARE * 0.01, "{run:?}");
        assert!(run[2..].iter().all(|(_, d)| d[0] < 0.001 && d[1] == 1.0), "{run:?}");
    }
}
