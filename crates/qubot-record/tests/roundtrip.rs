//! A recording read back: every compression, a file cut short, and the files replay refuses.

use std::path::{Path, PathBuf};

use qubot_msg::{encode_into, encoded_len, ActorId, Ping, Stamp};
use qubot_record::{load, Compression, Filter, LoadError, Options, Recording};

const SCAN_KEY: &str = "qubot/r1/sensor/lidar0/scan";
const CMD_KEY: &str = "qubot/r1/planner/main/cmd";

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("qubot-record-{}-{name}.mcap", std::process::id()))
}

/// A well-formed message with sequence `seq`, published at `publish_ns`.
fn wire(seq: u64, publish_ns: u64) -> Vec<u8> {
    let body = Ping { reply_to: u64::MAX };
    let mut buf = vec![0; encoded_len(&body, 0).expect("size")];
    let stamp = Stamp {
        seq,
        source: ActorId(7),
        origin_ns: publish_ns - 1_000,
        publish_ns,
    };
    encode_into(&stamp, &body, &mut buf).expect("encode");
    buf
}

/// Writes `n` messages alternating between the scan and command keys, 1 ms apart.
fn record(path: &Path, opts: &Options, n: u64) -> qubot_record::Summary {
    let mut rec = Recording::create(path, opts, "r1").expect("create");
    for i in 0..n {
        let key = if i % 2 == 0 { SCAN_KEY } else { CMD_KEY };
        let t = 1_700_000_000_000_000_000 + i * 1_000_000;
        rec.write(key, t + 500, &wire(i, t)).expect("write");
    }
    rec.finish().expect("finish")
}

#[test]
fn every_compression_reads_back_whole_and_in_order() {
    for compression in [Compression::Zstd, Compression::Lz4, Compression::None] {
        let path = temp(&format!("{compression:?}"));
        let opts = Options {
            compression,
            ..Options::default()
        };
        let summary = record(&path, &opts, 200);
        assert_eq!(summary.messages, 200);
        assert_eq!(summary.by_topic["scan"], 100);
        assert_eq!(summary.undecodable, 0);
        let buf = std::fs::read(&path).expect("read");
        let got = load(&buf, &Filter::default()).expect("load");
        assert_eq!(got.robot, "r1");
        assert!(got.cut_short.is_none(), "{:?}", got.cut_short);
        assert_eq!(got.entries.len(), 200, "{compression:?}");
        for (i, e) in got.entries.iter().enumerate() {
            let t = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
            assert_eq!(e.wire, wire(i as u64, t), "message {i} changed ({compression:?})");
            assert_eq!(e.log_ns, t + 500);
        }
        let only_cmd = Filter {
            include: vec!["cmd".into()],
            exclude: vec![],
        };
        let cmds = load(&buf, &only_cmd).expect("load");
        assert_eq!(cmds.keys, vec![CMD_KEY.to_owned()]);
        assert_eq!(cmds.entries.len(), 100);
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn a_file_cut_short_gives_its_complete_chunks_and_says_so() {
    let path = temp("cut");
    let opts = Options {
        compression: Compression::Zstd,
        chunk_bytes: 4 << 10,
    };
    record(&path, &opts, 2_000);
    let buf = std::fs::read(&path).expect("read");
    // What a killed recorder leaves: no summary, no footer, the last chunk half written.
    let cut = &buf[..buf.len() * 6 / 10];
    let got = load(cut, &Filter::default()).expect("load");
    assert!(got.cut_short.is_some(), "the cut was not reported");
    let n = got.entries.len();
    assert!(n > 500 && n < 2_000, "{n} messages from 60 % of the file");
    // What was read is a prefix of what was written, unchanged.
    for (i, e) in got.entries.iter().enumerate() {
        assert_eq!(
            e.wire,
            wire(i as u64, 1_700_000_000_000_000_000 + i as u64 * 1_000_000)
        );
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn files_replay_cannot_take_are_refused_with_the_reason() {
    assert!(matches!(
        load(b"not an mcap file at all", &Filter::default()),
        Err(LoadError::NotMcap(_))
    ));

    // Another header version, as an older release would have recorded it.
    let path = temp("old");
    {
        let mut w = mcap::Writer::new(std::io::BufWriter::new(
            std::fs::File::create(&path).expect("create"),
        ))
        .expect("writer");
        w.write_metadata(&mcap::records::Metadata {
            name: "qubot".into(),
            metadata: [("header_version".to_owned(), "0".to_owned())].into(),
        })
        .expect("metadata");
        w.finish().expect("finish");
    }
    let buf = std::fs::read(&path).expect("read");
    let e = load(&buf, &Filter::default()).expect_err("an old version was taken");
    assert!(
        matches!(&e, LoadError::WrongVersion { found } if found == "0"),
        "{e}"
    );
    assert!(e.to_string().contains("header version 0"), "{e}");

    // An MCAP file some other tool wrote.
    {
        let mut w = mcap::Writer::new(std::io::BufWriter::new(
            std::fs::File::create(&path).expect("create"),
        ))
        .expect("writer");
        w.finish().expect("finish");
    }
    let buf = std::fs::read(&path).expect("read");
    assert!(matches!(load(&buf, &Filter::default()), Err(LoadError::NotQubot)));
    std::fs::remove_file(&path).ok();
}
