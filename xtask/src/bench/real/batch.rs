//! A batch program end to end: per round one run per configuration, `ghostrace run`
//! for the traced ones. Wall time from start to exit; the program's CPU from its
//! own /proc times untraced, and from ghostrace's reaped-children times traced.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result};

use super::{Bench, CONFIGS, Measured, Outcome, Sample, procfs, session::Session};

pub fn measure(bench: &Bench) -> Result<Vec<Sample>> {
    let spec = bench.workload.batch.as_ref().context("not a batch program")?;
    let mut samples = Vec::new();
    let mut refused = vec![None; CONFIGS.len()];
    for round in 0..bench.options.rounds {
        for config in Bench::order(round) {
            let since = procfs::host_cpu();
            if let Some(why) = &refused[config] {
                samples.push(Sample { config, round, load: procfs::contention(since), outcome: Outcome::Refused(String::clone(why)) });
                continue;
            }
            for path in &spec.clean {
                let _ = std::fs::remove_dir_all(path);
            }
            // Commands are not Clone: each preparation is rebuilt from its parts.
            for prepare in &spec.prepare {
                let mut again = Command::new(prepare.get_program());
                again.args(prepare.get_args()).envs(prepare.get_envs().filter_map(|(k, v)| Some((k, v?))));
                crate::step::run(again.stdout(Stdio::null()))?;
            }
            let outcome = once(bench, config, round)?;
            if let Outcome::Refused(why) = &outcome {
                refused[config] = Some(why.clone());
            }
            samples.push(Sample { config, round, load: procfs::contention(since), outcome });
        }
    }
    Ok(samples)
}

fn once(bench: &Bench, config: usize, round: usize) -> Result<Outcome> {
    let start = Instant::now();
    let Some(options) = CONFIGS[config].options else {
        let mut child = Command::new(bench.binary)
            .args(&bench.workload.args)
            .envs(bench.workload.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(bench.logs.join(format!("{}.stderr", Bench::tag(config, round))))?)
            .spawn()
            .with_context(|| format!("cannot start {}", bench.binary.display()))?;
        let (stat, status) = procfs::final_stat(&mut child)?;
        anyhow::ensure!(status.success(), "{} exited with {status} untraced", bench.binary.display());
        return Ok(Outcome::Measured(Measured {
            speed: start.elapsed().as_secs_f64(),
            program_cpu: stat.own.total(),
            ghostrace: None,
            ghostrace_window: None,
            estimated: None,
            attached: None,
            hit: None,
            hits: None,
            records: None,
            serious: Vec::new(),
        }));
    };
    let mut args = vec!["run".to_string()];
    args.extend(options.iter().map(|o| o.to_string()));
    args.push("--".into());
    args.push(bench.binary.display().to_string());
    args.extend(bench.workload.args.iter().map(|a| a.to_string_lossy().into_owned()));
    // ghostrace passes its environment on to the program.
    let session = match Session::start(bench.ghostrace, &args, &bench.workload.env, bench.logs, &Bench::tag(config, round))? {
        Ok(s) => s,
        Err(why) => return Ok(Outcome::Refused(why)),
    };
    let ended = session.wait()?;
    let wall = start.elapsed().as_secs_f64();
    if !ended.ok {
        return Ok(Outcome::Refused(format!("failed: {}", ended.last_line)));
    }
    Ok(Outcome::Measured(Measured {
        speed: wall,
        program_cpu: ended.children.total(),
        ghostrace: Some(ended.own),
        ghostrace_window: Some(ended.own),
        estimated: ended.estimated,
        attached: ended.attached,
        hit: ended.hit,
        hits: ended.hits,
        records: ended.records,
        serious: ended.serious,
    }))
}
