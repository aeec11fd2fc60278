use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use qubot_runtime::DropPolicy;

/// Qubot: sensor, planner and actuator actors as separate processes over zenoh.
#[derive(Debug, Parser)]
#[command(name = "qubot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Run the whole pipeline on this host: spawn, supervise and stop the actor processes.
    Up(UpArgs),
    /// Run the sensor actor (simulated LiDAR) in this process.
    Sensor(ActorArgs),
    /// Run the planner actor in this process.
    Planner(ActorArgs),
    /// Run the actuator actor (simulated drive with watchdog) in this process.
    Actuator(ActorArgs),
    /// Subscribe to a topic through a bounded actor inbox and report each message.
    Listen(ListenArgs),
    /// Record the robot's bus, the wire bytes of every topic as received, into an MCAP file.
    Record(RecordArgs),
    /// Play a recording's wire channels back onto the bus, with their original timing.
    Replay(ReplayArgs),
    /// Publish synthetic sensor traffic on the real sensor's key and wire format.
    Flood(FloodArgs),
    /// Publish malformed bytes on a key, as a hostile or broken foreign peer would.
    Inject(InjectArgs),
    /// Remove shared-memory segments in /dev/shm left by zenoh processes that are gone.
    CleanShm,
    /// Live per-actor view (rates, latency, drops, mailboxes, restarts) from the /metrics endpoints.
    Top(TopArgs),
    /// Check the fleet inventory and generate each host's configs (used by `just deploy`).
    Inventory(InventoryArgs),
    /// Exit 0 once every enabled actor of a node config is live on the bus and serves /metrics.
    Health(HealthArgs),
    /// Run fault scenarios (deploy/chaos/*.toml) against a pipeline it starts; judge their SLOs.
    Chaos(ChaosArgs),
    /// Run a site's zenoh router: robots' boards connect to it; it never introduces one
    /// robot's boards to another's.
    Router(RouterArgs),
}

#[derive(Debug, Args)]
pub struct RouterArgs {
    /// The router's config (`qubot inventory render` writes it for a deploy); the other
    /// arguments then must not be given.
    #[arg(long, conflicts_with_all = ["site", "name", "metrics_addr", "host_label", "zenoh_config", "listen", "connect"])]
    pub config: Option<PathBuf>,
    /// Site name: the `robot` label of the router's own series.
    #[arg(long, default_value = "site", value_parser = parse_segment)]
    pub site: String,
    /// Name of this router within the site (key expression segment).
    #[arg(long, default_value = "main", value_parser = parse_segment)]
    pub name: String,
    /// Endpoints (`--listen` at least one, e.g. tcp/0.0.0.0:7500; `--connect` other routers),
    /// metrics, labels and zenoh settings, as every process takes them.
    #[command(flatten)]
    pub bus: BusArgs,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(subcommand)]
    pub cmd: InventoryCmd,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCmd {
    /// Check the inventory; errors name the field (exit 2). Warns on stderr when the fleet is
    /// unauthenticated (`fleet.tls = false`).
    Check { file: PathBuf },
    /// Print the selected hosts, one per line: name, address, user, root, arch, robot
    /// (tab-separated).
    Hosts {
        file: PathBuf,
        /// "all", a group, or host names separated by commas or spaces.
        #[arg(default_value = "all")]
        selector: String,
    },
    /// Write one host's node.toml (and zenoh.json5, env when needed) into a directory; for a
    /// router, its router.toml (and zenoh.json5).
    Render {
        file: PathBuf,
        #[arg(long)]
        host: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print how many hosts a deploy updates at once after the canary (`fleet.wave`).
    Wave { file: PathBuf },
    /// Print the `qubot router` arguments of router NAME (listen, metrics, site), generated
    /// from the inventory.
    Router { file: PathBuf, name: String },
    /// Print the selected site routers, one per line: name, address, user, root, arch
    /// (tab-separated). "all" selects every router; otherwise the router names it lists (a
    /// group, a robot or a board selects none).
    Routers {
        file: PathBuf,
        #[arg(default_value = "all")]
        selector: String,
    },
    /// Print the host that runs the actuator of HOST's robot, as `hosts` prints a host.
    Actuator { file: PathBuf, host: String },
    /// Print Prometheus file-SD targets (JSON) for the selected hosts.
    Targets {
        file: PathBuf,
        #[arg(default_value = "all")]
        selector: String,
    },
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Node config of the host (the one `qubot up` runs with), or with `--router` the
    /// router's config (the one `qubot router --config` runs with).
    #[arg(long)]
    pub config: PathBuf,
    /// Give up after this many seconds (exit 1).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Also require the robot's loop to close, when this host runs its actuator: commands
    /// applied there keep coming (from the planner bound to the robot's own sensor), with no
    /// foreign message dropped meanwhile.
    #[arg(long = "loop", conflicts_with = "router")]
    pub closed_loop: bool,
    /// Check a site router: it listens, serves /metrics, and (`--expect-robots`) every board
    /// of those robots holds a link to it.
    #[arg(long)]
    pub router: bool,
    /// With `--router`: robots (comma-separated) every board of which must be linked to it.
    #[arg(long, requires = "router", value_delimiter = ',')]
    pub expect_robots: Vec<String>,
    /// With `--router`: print the robots every board of which is linked to it now
    /// (comma-separated, maybe none) and exit 0; exit 1 when the router does not answer.
    #[arg(long, requires = "router", conflicts_with = "expect_robots")]
    pub served: bool,
}

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Scenario files (TOML); several run one after another, then a summary table.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Multiply every phase and fault time (e.g. 0.3 for the short versions the tests run).
    #[arg(long, default_value_t = 1.0)]
    pub duration_scale: f64,
    /// Write the RSS of every actor process, sampled each second, to this CSV file.
    #[arg(long)]
    pub rss_csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Node config (TOML); the built-in defaults run the whole pipeline on this host.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// World to simulate: a shipped name (see deploy/worlds), "default", or a file.
    #[arg(long)]
    pub world: Option<String>,
    /// Directory of shipped worlds.
    #[arg(long)]
    pub worlds_dir: Option<PathBuf>,
    /// Robot name (key expression segment).
    #[arg(long, value_parser = parse_segment)]
    pub robot: Option<String>,
    /// zenoh endpoint the supervisor listens on and the actors connect to.
    #[arg(long)]
    pub hub: Option<String>,
    /// Another zenoh endpoint every process connects to, e.g. the site router (repeatable;
    /// added to the node config's `[zenoh] connect`).
    #[arg(long)]
    pub connect: Vec<String>,
    /// Metrics ports: supervisor N, sensor N+1, planner N+2, actuator N+3, recorder N+4
    /// (with `--record` or `--foxglove`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=65532))]
    pub metrics_port_base: Option<u16>,
    /// Exit 0 as soon as the robot reaches its goal.
    #[arg(long)]
    pub exit_on_goal: bool,
    /// Give up after this many seconds (exit 1 unless the goal was reached).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Value of the `host` label on the series of every process it starts (default: the
    /// hostname).
    #[arg(long)]
    pub host_label: Option<String>,
    /// Record the robot's bus into this MCAP file: `qubot record` (zstd, metrics on port N+4)
    /// runs as a supervised child and is stopped cleanly with the run. It never stops the
    /// robot: a recorder that crashes is restarted into `<stem>-001.mcap`, `<stem>-002.mcap`...
    /// beside the file, one that gives up or that the free-disk guard stopped stays stopped.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The recorder's free-disk guard (`qubot record --min-free-mib`; default: its own).
    #[arg(long, requires = "record")]
    pub record_min_free_mib: Option<u64>,
    /// Serve the robot live to Foxglove on this address (default 127.0.0.1:8765; from another
    /// machine, through `ssh -L`): `qubot record --live` runs as the supervised recorder (with
    /// `--record`, the same process writes the file), metrics on port N+4.
    /// A deployed board sets it through `QUBOT_FOXGLOVE` (the inventory's `foxglove`).
    #[arg(long, env = "QUBOT_FOXGLOVE", num_args = 0..=1, default_missing_value = qubot_live::DEFAULT_ADDR)]
    pub foxglove: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Node config whose metrics ports to read (defaults when omitted).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Read these endpoints instead (host:port, repeatable).
    #[arg(long = "endpoint")]
    pub endpoints: Vec<SocketAddr>,
    /// Read every process of every host, and every site router, of this fleet inventory instead.
    #[arg(long, conflicts_with_all = ["config", "endpoints"])]
    pub inventory: Option<PathBuf>,
    /// One line per robot (loop rate, latency, safe stops...) instead of one per actor.
    #[arg(long)]
    pub fleet: bool,
    /// Print one snapshot and exit.
    #[arg(long)]
    pub once: bool,
    /// Seconds between the two scrapes that give a rate.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
}

#[derive(Debug, Args)]
pub struct ActorArgs {
    /// Node config (TOML); defaults when omitted.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Serve metrics here instead of the node config's bind address and port.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Value of the `host` label (default: the hostname).
    #[arg(long)]
    pub host_label: Option<String>,
    /// Set by `qubot up` to its own pid: exit when that process dies.
    #[arg(long, hide = true)]
    pub supervisor_pid: Option<u32>,
}

/// Options every process shares: identity, bus and metrics endpoint.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Robot name: the second segment of every key expression.
    #[arg(long, default_value = "qubot-one", env = "QUBOT_ROBOT", value_parser = parse_segment)]
    pub robot: String,
    /// Instance name of this actor (key expression segment).
    #[arg(long, value_parser = parse_segment)]
    pub instance: Option<String>,
    #[command(flatten)]
    pub bus: BusArgs,
    /// Shared-memory pool of this process in MiB; 0 publishes from the heap.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=4096))]
    pub shm_pool_mib: u64,
    /// Messages from this size (bytes) travel in shared memory; smaller ones are copied.
    #[arg(long, default_value_t = qubot_bus::DEFAULT_SHM_THRESHOLD)]
    pub shm_threshold: usize,
}

/// How a process joins the bus and shows itself: zenoh endpoints and settings, the metrics
/// endpoint and the `host` label (tools and the site router alike).
#[derive(Debug, Clone, Args)]
pub struct BusArgs {
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9901); none when omitted.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Value of the `host` label on every series (default: the hostname).
    #[arg(long)]
    pub host_label: Option<String>,
    /// A zenoh json5 config file, passed through untouched (endpoints, TLS, ACL...).
    #[arg(long)]
    pub zenoh_config: Option<PathBuf>,
    /// Override one zenoh config key, e.g. `--cfg 'scouting/multicast/enabled=true'` (json5 value).
    #[arg(long = "cfg", value_parser = parse_key_value)]
    pub cfg: Vec<(String, String)>,
    /// zenoh endpoint to listen on (repeatable), e.g. tcp/127.0.0.1:7447.
    #[arg(long)]
    pub listen: Vec<String>,
    /// zenoh endpoint to connect to (repeatable).
    #[arg(long)]
    pub connect: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MsgKind {
    Scan,
    Frame,
    Ping,
    Cmd,
    State,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Key expression to subscribe to.
    #[arg(long, default_value = "qubot/*/sensor/*/scan")]
    pub key: String,
    /// Message kind expected on the key.
    #[arg(long, value_enum, default_value_t = MsgKind::Scan)]
    pub kind: MsgKind,
    /// Inbox capacity (messages).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub mailbox: u64,
    /// Drop policy of a full inbox: newest, oldest or keep-latest.
    #[arg(long, default_value = "newest")]
    pub policy: DropPolicy,
    /// Exit after handling this many messages (0 = run until a signal).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Busy time per message in microseconds, to model a slow consumer.
    #[arg(long, default_value_t = 0)]
    pub handler_delay_us: u64,
    /// Print one JSON line per handled message.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The robot to record (`--robot`) and how to reach its bus (`--connect`).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The MCAP file to write (replaced if it exists). Optional with `--live`.
    #[arg(long, short, required_unless_present = "live")]
    pub out: Option<PathBuf>,
    /// Serve the Foxglove channels live over Foxglove's WebSocket protocol on this address
    /// (default 127.0.0.1:8765): open it in Foxglove as a "Foxglove WebSocket" connection.
    /// Off the robot's loop: a slow client's backlog is bounded and what it misses is counted
    /// (`qubot_view_dropped_total`).
    #[arg(long, num_args = 0..=1, default_missing_value = qubot_live::DEFAULT_ADDR, conflicts_with = "no_view")]
    pub live: Option<SocketAddr>,
    /// Chunk compression.
    #[arg(long, value_enum, default_value_t = RecordCompression::Zstd)]
    pub compression: RecordCompression,
    /// Chunk size in KiB before compression: at most what a killed recorder loses, besides
    /// its queue.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(4..=65536))]
    pub chunk_kib: u64,
    /// Record only this topic (repeatable; default: every topic).
    #[arg(long, value_parser = parse_topic)]
    pub include: Vec<String>,
    /// Do not record this topic (repeatable).
    #[arg(long, value_parser = parse_topic)]
    pub exclude: Vec<String>,
    /// Stop after recording this many messages (0: until SIGINT or SIGTERM).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Stop after this many seconds (0: until SIGINT or SIGTERM).
    #[arg(long, default_value_t = 0.0, value_parser = parse_seconds)]
    pub duration: f64,
    /// Messages waiting for the writer thread at most; beyond, the newest is dropped and counted.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub queue: u64,
    /// Start a new file after this many KiB of messages (0: never by size); files are named
    /// `<stem>-000.mcap`, `<stem>-001.mcap`... beside `--out`.
    #[arg(long, default_value_t = 0)]
    pub split_kib: u64,
    /// Start a new file after this many seconds (0: never by time).
    #[arg(long, default_value_t = 0.0, value_parser = parse_seconds)]
    pub split_s: f64,
    /// Keep at most this many files, removing the oldest (0: keep all).
    #[arg(long, default_value_t = 0)]
    pub max_files: u64,
    /// Close the recording cleanly before the disk holding it has less than this many MiB
    /// free, then exit 3 (the file is whole).
    #[arg(long, default_value_t = 256)]
    pub min_free_mib: u64,
    /// The world the robot runs in (a shipped name, "default", or a file), drawn on the
    /// recording's `/world` and `/movers` channels as the simulator has it; without it there
    /// are none (a real robot has no world file).
    #[arg(long, conflicts_with = "no_view")]
    pub world: Option<String>,
    /// Directory of shipped worlds.
    #[arg(long, default_value = "deploy/worlds")]
    pub worlds_dir: PathBuf,
    /// The run's world clock zero, ns since the epoch (its node config's `world_epoch_ns`):
    /// where moving obstacles stand depends on it. Default: when the recorder starts.
    #[arg(long, requires = "world")]
    pub world_epoch_ns: Option<u64>,
    /// Record the wire channels only, without the Foxglove channels derived from them.
    #[arg(long)]
    pub no_view: bool,
}

impl RecordArgs {
    /// `qubot record`'s exit code when the free-disk guard closed the recording: not a
    /// failure, and a supervisor does not start it again (docs/ARCHITECTURE.md §11).
    pub const EXIT_DISK_LOW: u8 = 3;
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording (`qubot record`'s MCAP file).
    pub file: PathBuf,
    /// Publish on this robot's keys (the recorded keys with their robot segment replaced).
    /// Without it the replay targets the default robot, and a recording of any other robot is
    /// refused: traffic goes onto a robot the operator named, never one the file names.
    #[arg(long, env = "QUBOT_ROBOT", value_parser = parse_segment)]
    pub robot: Option<String>,
    /// Endpoints, metrics, labels and zenoh settings, as every process takes them.
    #[command(flatten)]
    pub bus: BusArgs,
    /// Speed factor: 2 plays twice as fast, 0.5 at half speed, 0 as fast as possible.
    #[arg(long, default_value_t = 1.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Start this many seconds into the recording.
    #[arg(long, default_value_t = 0.0, value_parser = parse_seconds)]
    pub start: f64,
    /// Play this many seconds of the recording (0: to its end).
    #[arg(long, default_value_t = 0.0, value_parser = parse_seconds)]
    pub duration: f64,
    /// Replay only this topic (repeatable; default: every recorded topic).
    #[arg(long, value_parser = parse_topic)]
    pub include: Vec<String>,
    /// Do not replay this topic (repeatable).
    #[arg(long, value_parser = parse_topic)]
    pub exclude: Vec<String>,
    /// Play it this many times (0: until SIGINT or SIGTERM, or `--for`).
    #[arg(long, default_value_t = 1)]
    pub loops: u64,
    /// Stop after playing this many seconds (wall clock), wherever in the recording it is;
    /// 0: no limit.
    #[arg(long = "for", default_value_t = 0.0, value_parser = parse_seconds)]
    pub for_s: f64,
    /// Publish the recorded bytes unchanged, their producers' source ids included. By
    /// default replay stamps its own source id, so a live robot counts the messages as
    /// foreign; unchanged, the consumers that were bound to those producers (still running,
    /// on the robot the recording came from) take them for their own and judge them on
    /// freshness and sequence alone.
    #[arg(long)]
    pub keep_sources: bool,
    /// Stand in for the robot's producers (its sensors and actuators): replay only their
    /// topics, under a fresh source id and liveliness token per producer, with stamps moved
    /// to the time of playing, so a live planner binds to the replay and plans on exactly
    /// what the robot saw. Run it against a robot whose sensor and actuator are not running.
    #[arg(long, conflicts_with = "keep_sources")]
    pub as_producer: bool,
    /// Wait up to this many seconds for a subscriber on the replayed keys before playing
    /// (exit 2 when none came); 0 plays at once.
    #[arg(long, default_value_t = 0.0, value_parser = parse_seconds)]
    pub wait_subscriber: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordCompression {
    Zstd,
    Lz4,
    None,
}

#[derive(Debug, Args)]
pub struct FloodArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Key expression to publish on (default: the real sensor's scan key).
    #[arg(long)]
    pub key: Option<String>,
    /// Message kind: scan (payload = ranges) or frame or ping (payload = bytes).
    #[arg(long, value_enum, default_value_t = MsgKind::Scan)]
    pub kind: MsgKind,
    /// Payload bytes per message (a scan uses size/4 beams).
    #[arg(long, default_value_t = 2880, value_parser = clap::value_parser!(u64).range(4..=(64 << 20)))]
    pub size: u64,
    /// Messages per second per publisher (0 = as fast as possible).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Messages sent back to back at each tick.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub burst: u64,
    /// Stop after this many messages per publisher.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Stop after this many seconds, whichever comes first (every flood is bounded).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Parallel publishers (threads), all on the same key.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub publishers: u64,
    /// Wait up to this many seconds for a subscriber before sending (0 = do not wait).
    #[arg(long, default_value_t = 0.0)]
    pub wait_subscriber: f64,
    /// Pause before the last message of each publisher. Best-effort puts that overflow
    /// zenoh's transmit queue are dropped silently; the last message, sent once the queue has
    /// drained, lets receivers see any trailing loss as a sequence gap and count it.
    #[arg(long, default_value_t = 250)]
    pub linger_ms: u64,
    /// Replace the robot's sensor: join as the producer the key names (its liveliness token,
    /// with this process's source id) and stamp each scan with the pose the actuator reports,
    /// so the planner plans on these synthetic scans. Start the pipeline without its simulated
    /// sensor (`[sensor] enabled = false`). One publisher only.
    #[arg(long)]
    pub as_producer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Malformed {
    Garbage,
    Empty,
    Truncated,
    BadMagic,
    BadVersion,
    BadKind,
    Oversize,
    BadBody,
    Trailing,
    /// A well-formed command planned on a scan captured 2 s ago: its deadline (capture + the
    /// default pipeline budget) has passed (the actuator must reject it).
    StaleCommand,
    /// A well-formed command with a NaN velocity (the actuator must reject it).
    InvalidCommand,
    /// A well-formed, fresh command at full speed ahead (only the bound planner may steer).
    DriveCommand,
    /// Well-formed, fresh actuator state with the robot far away (only the bound actuator
    /// may say where the robot is).
    FarState,
    /// A well-formed scan captured 2 s ago (a replay).
    StaleScan,
    /// A well-formed scan of 16 Mi beams (64 MiB of ranges), far above any planner's cap.
    HugeScan,
    /// A well-formed 8-beam scan from a new source id per message (a peer cycling ids).
    DistinctSources,
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Key expression to publish on.
    #[arg(long, default_value = "qubot/qubot-one/sensor/lidar0/scan")]
    pub key: String,
    /// What to send (repeatable; default: every kind of damage in turn).
    #[arg(long = "what", value_enum)]
    pub what: Vec<Malformed>,
    /// Messages of each kind.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: u64,
    /// Wait up to this many seconds for a subscriber before sending.
    #[arg(long, default_value_t = 10.0)]
    pub wait_subscriber: f64,
    /// Also wait (within --wait-subscriber) until connected to this many peers. In a peer
    /// mesh a peer only forwards to its own subscribers: one matching subscriber (e.g. the
    /// hub's) does not mean every subscriber is reachable yet.
    #[arg(long, default_value_t = 0)]
    pub wait_peers: usize,
    /// Join as the producer the key names (declare its liveliness token with this process's
    /// source id), so consumers bound to it take these messages as their producer's: for
    /// testing a consumer's own checks with its real producer stopped or disabled.
    #[arg(long)]
    pub as_producer: bool,
    /// Stamp this source id (16 hex digits) instead of a fresh random one, e.g. to replay a
    /// restarted producer's old id.
    #[arg(long, value_parser = parse_source, conflicts_with = "as_producer")]
    pub source: Option<u64>,
    /// Messages per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

fn parse_source(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s, 16)
        .ok()
        .filter(|&v| v != 0)
        .ok_or_else(|| format!("{s:?} is not a non-zero source id in hex"))
}

/// Key expression segments must not contain separators or wildcards.
fn parse_segment(s: &str) -> Result<String, String> {
    qubot_bus::check_segment(s).map(|()| s.to_owned())
}

fn parse_topic(s: &str) -> Result<String, String> {
    if qubot_msg::topic::by_name(s).is_some() {
        return Ok(s.to_owned());
    }
    let known: Vec<&str> = qubot_msg::topic::ALL.iter().map(|t| t.name).collect();
    Err(format!("{s:?} is not a topic; topics: {}", known.join(", ")))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 1000000")),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a speed factor from 0 (as fast as possible) to 1000"
        )),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn segments_and_pairs_are_checked() {
        assert!(parse_segment("lidar0").is_ok());
        assert!(parse_segment("a/b").is_err());
        assert!(parse_segment("").is_err());
        assert_eq!(
            parse_key_value("mode=\"peer\""),
            Ok(("mode".into(), "\"peer\"".into()))
        );
        assert!(parse_key_value("novalue").is_err());
    }
}
