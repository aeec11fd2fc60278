//! SVG plots of a report, drawn with plotters: latency and CPU time per message against
//! payload (raw vs Qubot, SHM vs TCP) and the allocator A/B.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::{
    report::{Measured, Report},
    roles::Transport,
};

struct Series {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// Whose figure a plot line shows.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Raw,
    /// Raw zenoh with the consumer on a thread of its own.
    Handoff,
    Qubot,
}

/// Which figure a plot shows of a case: `None` for a case that does not measure it.
type Pick = fn(&Measured, Who) -> Option<f64>;

/// One-hop latency p50, microseconds.
fn p50(m: &Measured, who: Who) -> Option<f64> {
    match *m {
        Measured::Latency {
            raw_p50_us,
            handoff_p50_us,
            qubot_p50_us,
            ..
        } => Some(match who {
            Who::Raw => raw_p50_us,
            Who::Handoff => handoff_p50_us,
            Who::Qubot => qubot_p50_us,
        }),
        _ => None,
    }
}

/// CPU microseconds per message (publisher and subscriber together) in the paced case.
fn cpu(m: &Measured, who: Who) -> Option<f64> {
    match *m {
        Measured::Allocs {
            raw_cpu_us_per_msg,
            handoff_cpu_us_per_msg,
            qubot_cpu_us_per_msg,
            ..
        } => match who {
            Who::Raw => raw_cpu_us_per_msg,
            Who::Handoff => handoff_cpu_us_per_msg,
            Who::Qubot => qubot_cpu_us_per_msg,
        },
        _ => None,
    }
}

/// (payload, figure) of every case with transport `t` and `allocator` that measures it.
fn points(r: &Report, pick: Pick, t: Transport, allocator: &str, who: Who) -> Vec<(f64, f64)> {
    r.cases
        .iter()
        .filter(|c| c.transport == t && c.allocator == allocator)
        .filter_map(|c| Some((c.payload_bytes as f64, pick(&c.measured, who)?)))
        .filter(|(_, y)| y.is_finite() && *y > 0.0)
        .collect()
}

const P50_AXIS: &str = "p50 one hop (µs, log)";

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(127, 127, 127);

fn series(label: &str, color: RGBColor, dashed: bool, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.into(),
        color,
        dashed,
        points,
    }
}

/// Raw zenoh (dashed) against Qubot (solid), SHM and TCP, with mimalloc; raw zenoh handed
/// off (dashed, paler) for SHM.
fn vs_raw(r: &Report, pick: Pick) -> Vec<Series> {
    let mut out = Vec::new();
    for (t, name, color) in [(Transport::Shm, "SHM", BLUE), (Transport::Tcp, "TCP", ORANGE)] {
        for (who, label) in [(Who::Raw, "raw zenoh"), (Who::Qubot, "Qubot")] {
            out.push(series(
                &format!("{label}, {name}"),
                color,
                who == Who::Raw,
                points(r, pick, t, "mimalloc", who),
            ));
        }
    }
    out.push(series(
        "raw zenoh handed off, SHM",
        GREY,
        true,
        points(r, pick, Transport::Shm, "mimalloc", Who::Handoff),
    ));
    out
}

pub fn all(r: &Report, dir: &Path) -> anyhow::Result<()> {
    chart(
        &dir.join("latency.svg"),
        "One-hop latency p50 vs payload (mimalloc)",
        P50_AXIS,
        &vs_raw(r, p50),
    )?;
    chart(
        &dir.join("cpu.svg"),
        "CPU time per message, publisher + subscriber, paced (mimalloc)",
        "CPU per message (µs, log)",
        &vs_raw(r, cpu),
    )?;
    let mut ab = Vec::new();
    for (t, name, color) in [(Transport::Shm, "SHM", GREEN), (Transport::Tcp, "TCP", RED)] {
        for allocator in ["mimalloc", "system"] {
            ab.push(series(
                &format!("Qubot {name}, {allocator}"),
                color,
                allocator == "system",
                points(r, p50, t, allocator, Who::Qubot),
            ));
        }
    }
    chart(
        &dir.join("allocators.svg"),
        "Qubot one-hop latency p50: mimalloc vs system allocator",
        P50_AXIS,
        &ab,
    )
}

/// The x axis of the harness's charts: payload sizes.
const PAYLOAD_AXIS: Axis = Axis {
    desc: "payload (bytes, log)",
    label: |x| crate::report::size(*x as usize),
};

struct Axis {
    desc: &'static str,
    label: fn(&f64) -> String,
}

fn chart(path: &Path, title: &str, y_desc: &str, series: &[Series]) -> anyhow::Result<()> {
    chart_on(path, title, &PAYLOAD_AXIS, y_desc, series)
}

/// The fleet's cost curve (`qubot-bench scale`): per-robot and router CPU, and the pipeline
/// latency, against the number of robots.
pub fn scale(r: &crate::scale::ScaleReport, dir: &Path) -> anyhow::Result<()> {
    let robots = Axis {
        desc: "robots (log)",
        label: |x| format!("{x:.0}"),
    };
    let of = |f: fn(&crate::scale::Point) -> Option<f64>| -> Vec<(f64, f64)> {
        r.points
            .iter()
            .filter_map(|p| Some((p.robots as f64, f(p)?)))
            .filter(|(_, y)| y.is_finite() && *y > 0.0)
            .collect()
    };
    chart_on(
        &dir.join("scale-cpu.svg"),
        "CPU vs fleet size, one router (% of one core)",
        &robots,
        "% of one core (log)",
        &[
            series("per robot, mean", BLUE, false, of(|p| Some(p.robot_cpu_pct_mean))),
            series("per robot, worst", BLUE, true, of(|p| Some(p.robot_cpu_pct_max))),
            series("router", ORANGE, false, of(|p| Some(p.router_cpu_pct))),
            series("all processes", GREY, true, of(|p| Some(p.total_cpu_pct))),
        ],
    )?;
    chart_on(
        &dir.join("scale-latency.svg"),
        "Pipeline latency (capture to applied) vs fleet size",
        &robots,
        "ms (log)",
        &[
            series("p50", GREEN, false, of(|p| p.latency_p50_ms)),
            series("p99", RED, false, of(|p| p.latency_p99_ms)),
        ],
    )
}

fn chart_on(path: &Path, title: &str, x: &Axis, y_desc: &str, series: &[Series]) -> anyhow::Result<()> {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    if pts().next().is_none() {
        return Ok(()); // nothing measured for this plot (e.g. --only throughput)
    }
    let (xmin, xmax) = pts().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = pts().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (xmin / 1.5..xmax * 1.5).log_scale(),
            (ymin / 1.5..ymax * 1.5).log_scale(),
        )
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc(x.desc)
        .y_desc(y_desc)
        .x_label_formatter(&x.label)
        .draw()
        .map_err(|e| err(&e))?;
    for s in series {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        let color = s.color;
        if s.dashed {
            c.draw_series(DashedLineSeries::new(s.points.clone(), 6, 4, style))
                .map_err(|e| err(&e))?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
        } else {
            c.draw_series(LineSeries::new(s.points.clone(), style))
                .map_err(|e| err(&e))?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        c.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(&e))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
