//! Running until the finish: a signal, an actor that gave up, the timeout, or the goal with
//! `--exit-on-goal`. The referee's goal is announced once (`goal_reached`) either way.

use std::{sync::Mutex, time::Duration};

use qubot_ops::run::{Event, EventKind, Finish};
use tokio::time::Instant;

use super::{
    actors::Actors,
    events::Events,
    referee::{self, Referee},
    report::round3,
    signals::Signals,
};
use crate::cli::UpArgs;

/// How often the referee's goal flag is looked at.
const GOAL_POLL: Duration = Duration::from_millis(100);

pub async fn wait(
    args: &UpArgs,
    actors: &mut Actors,
    signals: &mut Signals,
    referee: &Mutex<Referee>,
    events: Events,
    started: std::time::Instant,
) -> Finish {
    let deadline = args.timeout.map(|t| Instant::now() + Duration::from_secs_f64(t));
    let mut tick = tokio::time::interval(GOAL_POLL);
    let mut announced = false;
    loop {
        tokio::select! {
            sig = signals.recv() => {
                tracing::info!(signal = sig, "stopping the pipeline");
                return Finish::Signal;
            }
            actor = actors.gave_up() => {
                tracing::error!(actor, "restart intensity exceeded: giving up");
                return Finish::GaveUp;
            }
            _ = sleep_until(deadline) => return Finish::Timeout,
            _ = tick.tick() => {
                let goal = referee::lock(referee).goal_reached;
                if goal && !announced {
                    announced = true;
                    let t_s = round3(started.elapsed().as_secs_f64());
                    events.emit(Event::REFEREE, EventKind::GoalReached { t_s });
                }
                if goal && args.exit_on_goal {
                    return Finish::Goal;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
