//! The shipped Foxglove layout (deploy/foxglove/qubot.json) shows the channels a recording
//! has: every topic it names is one the view derives, and the 3-D panel draws every drawable
//! one (docs/ARCHITECTURE.md §11).

use std::collections::BTreeSet;

use qubot_record::{Channel, BASE_FRAME};

const LAYOUT: &str = include_str!("../../../deploy/foxglove/qubot.json");

#[test]
fn the_layout_names_only_derived_channels_and_draws_them_all() {
    let layout: serde_json::Value = serde_json::from_str(LAYOUT).expect("the layout is JSON");
    let derived: BTreeSet<&str> = Channel::ALL.iter().map(|c| c.topic()).collect();
    let panels = layout["configById"].as_object().expect("configById");
    let three_d = &panels["3D!qubot"];
    assert_eq!(three_d["followTf"], BASE_FRAME);
    let drawn: BTreeSet<&str> = three_d["topics"]
        .as_object()
        .expect("topics")
        .keys()
        .map(String::as_str)
        .collect();
    let drawable = [
        Channel::Scan,
        Channel::World,
        Channel::Movers,
        Channel::Pose,
        Channel::Memory,
    ];
    assert_eq!(drawn, drawable.iter().map(|c| c.topic()).collect());
    let mut plotted = BTreeSet::new();
    for (id, panel) in panels.iter().filter(|(id, _)| id.starts_with("Plot!")) {
        for p in panel["paths"].as_array().expect("paths") {
            let path = p["value"].as_str().expect("a message path");
            let topic = path.split('.').next().unwrap_or(path);
            assert!(
                derived.contains(topic),
                "{id} plots {path}, not a derived channel"
            );
            plotted.insert(topic);
        }
    }
    let plottable = [Channel::Cmd, Channel::Loop];
    assert_eq!(plotted, plottable.iter().map(|c| c.topic()).collect());
    // Every panel the arrangement names is configured.
    let mut ids = Vec::new();
    let mut stack = vec![&layout["layout"]];
    while let Some(node) = stack.pop() {
        match node.as_str() {
            Some(id) => ids.push(id),
            None => stack.extend([&node["first"], &node["second"]]),
        }
    }
    assert_eq!(ids.len(), panels.len());
    assert!(ids.iter().all(|id| panels.contains_key(*id)), "{ids:?}");
}
