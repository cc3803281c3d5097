//! `ghostrace run` and `ghostrace attach`.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};

use super::{TraceOptions, session};
use crate::{
    child,
    event_loop::{ChildSignals, Heard, StopSignals, until},
    procfs,
};
use tokio::{
    signal::unix::{SignalKind, signal},
    time,
};

/// Resolves CMD like a shell does: a path as given, a bare name through $PATH.
fn resolve(program: &OsString) -> Result<PathBuf> {
    let path = PathBuf::from(program);
    if path.components().count() > 1 {
        if !path.exists() {
            bail!("cannot run {}: no such file", path.display());
        }
        return Ok(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&path))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("cannot run {}: not found in PATH", path.display()))
}

pub fn run(options: &TraceOptions, command: &[OsString]) -> Result<i32> {
    let options = &options.for_run();
    let path = resolve(&command[0])?;
    let mut session = session::prepare(&path, options)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _in_runtime = runtime.enter();
    // Caught before the fork: from then on ghostrace must outlive the child to detach.
    let mut signals = ChildSignals::new()?;
    let reload = options.reloads_on_hangup();
    let mut child = child::spawn_gated(&path, &command[0], &command[1..])?;
    // The child is held before exec: if attaching fails it is dropped, and the
    // closed gate makes it exit without running.
    // Held, it does not run the program yet: where it is loaded is known after exec.
    let attached = session.start(child.pid(), 0, options)?;
    tracing::info!(
        "{} probes on {} ({}), pid {}, attached in {:.0} ms ({} links)",
        attached,
        path.display(),
        session.binary.go_version(),
        child.pid(),
        session.attach_time.as_secs_f64() * 1e3,
        session.tracer.attach_mode().name()
    );
    let mut follower = super::follow::Follower::start(&mut session, child.pid())
        .map_err(|e| tracing::warn!("Go programs started by pid {} will not be traced: {e:#}", child.pid()))
        .ok();
    // A stop that came while attaching reaches the child still held: it never runs.
    while let Some(heard) = runtime.block_on(signals.pending(reload)) {
        obey(heard, &child, &mut session, options);
    }
    // A child killed at the gate cannot be released: its status says what happened.
    if let Err(e) = child.release() {
        tracing::warn!("{e}");
    }
    if session.binary.is_pie() {
        child.wait_exec();
        // A child that failed to exec or died at once leaves nothing to symbolize.
        if let Err(e) = session.relocate(child.pid())
            && child::alive(child.pid())
        {
            tracing::warn!("call sites of pid {} stay unsymbolized: {e:#}", child.pid());
        }
    }
    let status = runtime.block_on(async {
        loop {
            if let Some(status) = child.try_wait()? {
                break anyhow::Ok(status);
            }
            // The governor's next switch bounds the wait (1 ms at the finest), and so
            // does the check for the child's exit, should a SIGCHLD be missed.
            let wake = session.govern().clamp(Duration::from_millis(1), Duration::from_millis(100));
            tokio::select! {
                heard = signals.next(reload) => obey(heard, &child, &mut session, options),
                () = async {
                    match &mut follower {
                        Some(follower) => follower.readable().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(follower) = &mut follower {
                        follower.handle_events(&mut session);
                    }
                }
                () = time::sleep(wake) => {}
            }
        }
    })?;
    if follower.is_some() {
        session.tracer.release_held();
    }
    let outcome = session.finish(options)?;
    Ok(outcome.exit_code(child::exit_code(status), options))
}

/// Does what a signal asks while the child lives.
fn obey(heard: Heard, child: &child::GatedChild, session: &mut session::Session, options: &TraceOptions) {
    match heard {
        Heard::Forward(sig) => child.signal(sig),
        Heard::Reload => session.reload_budget(options),
        Heard::ChildChanged | Heard::Ignored => {}
    }
}

/// Traces `pid` until Ctrl-C, SIGTERM, its exit or `duration`.
pub fn attach(options: &TraceOptions, pid: u32, duration: Option<Duration>) -> Result<i32> {
    if !child::alive(pid) {
        bail!("no process with pid {pid}");
    }
    // /proc/PID/exe reaches the binary even in another mount namespace.
    let exe = procfs::exe_link(pid);
    let mut session = session::prepare(&exe, options)?;
    session.name = procfs::exe_path(pid).unwrap_or(exe);
    let load_bias = procfs::load_bias(pid, &session.binary).with_context(|| format!("locating the program of pid {pid}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _in_runtime = runtime.enter();
    let mut stop = StopSignals::new()?;
    let mut hangup = signal(SignalKind::hangup())?;
    let attached = session.start(pid, load_bias, options)?;
    tracing::info!(
        "{} probes on pid {pid} ({}, {} links); Ctrl-C to stop",
        attached,
        session.binary.go_version(),
        session.tracer.attach_mode().name()
    );
    runtime.block_on(async {
        let deadline = duration.map(|d| time::Instant::now() + d);
        while child::alive(pid) {
            // The governor's next switch bounds the wait, and so does the check for the process's exit.
            let wake = session.govern().min(Duration::from_millis(100));
            tokio::select! {
                () = stop.requested() => break,
                () = until(deadline) => break,
                _ = hangup.recv() => {
                    // Without a budget file to read, SIGHUP stops as SIGTERM does.
                    if !options.reloads_on_hangup() {
                        break;
                    }
                    session.reload_budget(options);
                }
                () = time::sleep(wake) => {}
            }
        }
    });
    let outcome = session.finish(options)?;
    Ok(outcome.exit_code(0, options))
}
