//! The orchestrator: every case measured for raw zenoh and for Qubot, alternating in rounds
//! so that both see the same machine weather, for each allocator.

use std::{path::Path, time::Instant};

use anyhow::Context;

use crate::{
    plot,
    report::{self, Case, Machine, Measured, Report},
    roles::{Impl, Kind, RoleArgs, Transport},
    spawn::{free_endpoint, pair},
    stats::{quantile, sorted},
};

pub const LATENCY_PAYLOADS: [usize; 5] = [64, 1 << 10, 64 << 10, 1 << 20, 4 << 20];
pub const THROUGHPUT_PAYLOADS: [usize; 2] = [64, 64 << 10];
pub const ALLOCATORS: [&str; 2] = ["mimalloc", "system"];
const TRANSPORTS: [Transport; 2] = [Transport::Shm, Transport::Tcp];

/// How much of everything: `quick` for a look in under two minutes, full for the record.
pub struct Plan {
    pub rounds: u32,
    pub latency_count: u64,
    pub latency_seconds: f64,
    pub throughput_count: u64,
    pub throughput_seconds: f64,
    pub allocs_count: u64,
    pub allocs_rate: f64,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                rounds: 1,
                latency_count: 200,
                latency_seconds: 1.0,
                throughput_count: 400_000,
                throughput_seconds: 1.0,
                allocs_count: 1_000,
                allocs_rate: 2_000.0,
            }
        } else {
            Plan {
                rounds: 3,
                latency_count: 1_000,
                latency_seconds: 3.0,
                throughput_count: 2_000_000,
                throughput_seconds: 3.0,
                allocs_count: 5_000,
                allocs_rate: 2_000.0,
            }
        }
    }
}

fn args(imp: Impl, kind: Kind, transport: Transport, payload: usize) -> anyhow::Result<RoleArgs> {
    Ok(RoleArgs {
        imp,
        kind,
        transport,
        payload,
        endpoint: free_endpoint()?,
        count: 0,
        warmup: 0,
        rate: 0.0,
        max_seconds: 0.0,
    })
}

/// Raw zenoh with its default settings (in the callback and handed off), Qubot with its
/// default and with its `latency` profile, alternating within each round.
fn latency(plan: &Plan, t: Transport, payload: usize, allocator: &str) -> anyhow::Result<Case> {
    const IMPLS: [Impl; 4] = [Impl::Raw, Impl::RawHandoff, Impl::Qubot, Impl::QubotLatency];
    let mut samples: [Vec<f64>; 4] = Default::default();
    let mut timeouts = 0;
    for _ in 0..plan.rounds {
        for (slot, imp) in IMPLS.into_iter().enumerate() {
            let mut a = args(imp, Kind::Ping, t, payload)?;
            a.count = plan.latency_count;
            a.warmup = 50;
            a.max_seconds = plan.latency_seconds;
            let (_, r) = pair(&a, allocator)?;
            timeouts += r.timeouts;
            samples[slot].extend(r.half_rtt_us);
        }
    }
    let [raw, handoff, qubot, lowlat] = samples.map(sorted);
    let (raw_p50_us, raw_p99_us) = (quantile(&raw, 0.5), quantile(&raw, 0.99));
    let (handoff_p50_us, handoff_p99_us) = (quantile(&handoff, 0.5), quantile(&handoff, 0.99));
    let (qubot_p50_us, qubot_p99_us) = (quantile(&qubot, 0.5), quantile(&qubot, 0.99));
    let (latency_profile_p50_us, latency_profile_p99_us) = (quantile(&lowlat, 0.5), quantile(&lowlat, 0.99));
    Ok(Case {
        kind: "latency",
        transport: t,
        payload_bytes: payload,
        allocator: allocator.into(),
        measured: Measured::Latency {
            raw_p50_us,
            raw_p99_us,
            qubot_p50_us,
            qubot_p99_us,
            ratio_p50: qubot_p50_us / raw_p50_us,
            ratio_p99: qubot_p99_us / raw_p99_us,
            handoff_p50_us,
            handoff_p99_us,
            handoff_ratio_p50: handoff_p50_us / raw_p50_us,
            qubot_over_handoff_p50: qubot_p50_us / handoff_p50_us,
            latency_profile_p50_us,
            latency_profile_p99_us,
            latency_profile_ratio_p50: latency_profile_p50_us / raw_p50_us,
            samples: raw.len().min(handoff.len()).min(qubot.len()).min(lowlat.len()),
            timeouts,
        },
    })
}

/// Messages per second the subscriber received, pooled over rounds.
fn throughput(plan: &Plan, t: Transport, payload: usize, allocator: &str) -> anyhow::Result<Case> {
    let mut rate = [(0u64, 0f64); 3];
    for _ in 0..plan.rounds {
        for (slot, imp) in [Impl::Raw, Impl::RawHandoff, Impl::Qubot].into_iter().enumerate() {
            let mut a = args(imp, Kind::Source, t, payload)?;
            a.count = plan.throughput_count;
            a.warmup = 1_000;
            a.max_seconds = plan.throughput_seconds;
            let (sink, _) = pair(&a, allocator)?;
            let sink = sink.context("sink report")?;
            rate[slot].0 += sink.messages;
            rate[slot].1 += sink.seconds;
        }
    }
    let per_s = |(n, s): (u64, f64)| if s > 0.0 { n as f64 / s } else { 0.0 };
    let [raw, handoff, qubot] = rate.map(per_s);
    Ok(Case {
        kind: "throughput",
        transport: t,
        payload_bytes: payload,
        allocator: allocator.into(),
        measured: Measured::Throughput {
            raw_msgs_per_s: raw,
            qubot_msgs_per_s: qubot,
            ratio: qubot / raw,
            handoff_msgs_per_s: handoff,
            handoff_ratio: handoff / raw,
            qubot_over_handoff: qubot / handoff,
            raw_bytes_per_s: raw * payload as f64,
            qubot_bytes_per_s: qubot * payload as f64,
        },
    })
}

/// One round of one implementation in the paced case, per message: allocations at the
/// publisher and at the subscriber, and the CPU time of both processes together.
#[derive(Debug, Clone, Copy)]
struct Round {
    allocs_pub: Option<f64>,
    allocs_sub: Option<f64>,
    cpu_us: Option<f64>,
}

/// Allocations and CPU time per message in steady state at a paced rate (no queues building
/// up, every message delivered: the cost of a sensor stream at a fixed rate), both ends, both
/// implementations, alternating for `plan.rounds` rounds; each figure is the median over the
/// rounds, so one run that zenoh batched differently does not decide the case.
pub fn allocs(plan: &Plan, t: Transport, payload: usize, allocator: &str) -> anyhow::Result<Case> {
    let mut per_round: [Vec<Round>; 3] = Default::default();
    let mut messages = u64::MAX;
    let mut growth = [(0, 0); 3];
    for _ in 0..plan.rounds.max(1) {
        for (slot, imp) in [Impl::Raw, Impl::RawHandoff, Impl::Qubot].into_iter().enumerate() {
            let mut a = args(imp, Kind::Source, t, payload)?;
            a.count = plan.allocs_count;
            a.warmup = 500;
            a.rate = plan.allocs_rate;
            a.max_seconds = (a.count + a.warmup) as f64 / a.rate + 5.0;
            let (sink, source) = pair(&a, allocator)?;
            let sink = sink.context("sink report")?;
            per_round[slot].push(Round {
                allocs_pub: source.allocs_per_msg,
                allocs_sub: sink.allocs_per_msg,
                cpu_us: source
                    .cpu_us_per_msg
                    .zip(sink.cpu_us_per_msg)
                    .map(|(p, s)| p + s)
                    .filter(|c| *c > 0.0),
            });
            // The fewest any Qubot run saw: the test checks every run delivered.
            if imp == Impl::Qubot {
                messages = messages.min(sink.messages);
            }
            growth[slot] = (source.live_growth_bytes, sink.live_growth_bytes);
        }
    }
    let median = |v: Option<Vec<f64>>| v.map(|v| quantile(&sorted(v), 0.5));
    let of = |rounds: &[Round], side: fn(&Round) -> Option<f64>| median(rounds.iter().map(side).collect());
    let [raw, handoff, qubot] = &per_round;
    // zenoh's own figures move with how its batches fall, which moves with the machine's
    // load: one implementation against another within a round (runs back to back, under the
    // same load) is steadier than medians taken apart. Median over rounds of `cmp(a, b)`.
    let paired_with =
        |a: &[Round], b: &[Round], side: fn(&Round) -> Option<f64>, cmp: fn(f64, f64) -> f64| {
            median(
                b.iter()
                    .zip(a)
                    .map(|(b, a)| Some(cmp(side(a)?, side(b)?)))
                    .collect(),
            )
        };
    let paired = |side, cmp| paired_with(qubot, raw, side, cmp);
    let extra = |q: f64, r: f64| q - r;
    Ok(Case {
        kind: "allocs",
        transport: t,
        payload_bytes: payload,
        allocator: allocator.into(),
        measured: Measured::Allocs {
            allocs_per_msg_pub: of(qubot, |r| r.allocs_pub),
            allocs_per_msg_sub: of(qubot, |r| r.allocs_sub),
            raw_allocs_per_msg_pub: of(raw, |r| r.allocs_pub),
            raw_allocs_per_msg_sub: of(raw, |r| r.allocs_sub),
            extra_allocs_per_msg_pub: paired(|r| r.allocs_pub, extra),
            extra_allocs_per_msg_sub: paired(|r| r.allocs_sub, extra),
            raw_cpu_us_per_msg: of(raw, |r| r.cpu_us),
            qubot_cpu_us_per_msg: of(qubot, |r| r.cpu_us),
            cpu_ratio: paired(|r| r.cpu_us, |q, r| q / r),
            handoff_allocs_per_msg_sub: of(handoff, |r| r.allocs_sub),
            handoff_cpu_us_per_msg: of(handoff, |r| r.cpu_us),
            handoff_cpu_ratio: paired_with(handoff, raw, |r| r.cpu_us, |h, r| h / r),
            qubot_over_handoff_cpu: paired_with(qubot, handoff, |r| r.cpu_us, |q, h| q / h),
            messages,
            live_growth_bytes_pub: growth[2].0,
            live_growth_bytes_sub: growth[2].1,
            raw_live_growth_bytes_pub: growth[0].0,
            raw_live_growth_bytes_sub: growth[0].1,
        },
    })
}

pub fn run(quick: bool, out_dir: &Path, only: Option<&str>) -> anyhow::Result<Report> {
    let plan = Plan::new(quick);
    let started = Instant::now();
    let mut cases = Vec::new();
    let wants = |k: &str| only.is_none_or(|o| o == k);
    // Allocators alternate inside each case, so an A/B pair is measured minutes apart at most.
    for t in TRANSPORTS {
        if wants("latency") {
            for p in LATENCY_PAYLOADS {
                for allocator in ALLOCATORS {
                    eprintln!("bench: latency {t:?} {} {allocator}", report::size(p));
                    cases.push(latency(&plan, t, p, allocator)?);
                }
            }
        }
        for p in THROUGHPUT_PAYLOADS {
            for allocator in ALLOCATORS {
                if wants("throughput") {
                    eprintln!("bench: throughput {t:?} {} {allocator}", report::size(p));
                    cases.push(throughput(&plan, t, p, allocator)?);
                }
                if wants("allocs") {
                    eprintln!("bench: allocs {t:?} {} {allocator}", report::size(p));
                    cases.push(allocs(&plan, t, p, allocator)?);
                }
            }
        }
    }
    let report = Report {
        machine: Machine::read(),
        git_rev: report::git_rev(),
        allocator: crate::alloc::name(),
        quick,
        seconds: started.elapsed().as_secs_f64(),
        cases,
    };
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let json = out_dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    plot::all(&report, out_dir)?;
    Ok(report)
}
