//! Round trip of `EventWriter` through an independent TFRecord/Event reader
//! written here from the format description (bitwise CRC-32C, own protobuf
//! walker), so a bug shared by the crate's writer and reader cannot hide.

use amflow_report::{read_scalars, EventWriter};

/// Bit-at-a-time CRC-32C, deliberately not table driven.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    crc ^ 0xFFFF_FFFF
}

#[allow(clippy::manual_rotate)] // spelled as in TensorFlow's crc32c.h
fn masked(data: &[u8]) -> u32 {
    let c = crc32c_bitwise(data);
    ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

#[derive(Debug, Default)]
struct Ev {
    wall_time: f64,
    step: i64,
    file_version: Option<String>,
    values: Vec<(String, f32)>,
}

/// Returns (field number, wire type, payload slice or integer value).
fn fields(buf: &[u8]) -> Vec<(u64, u64, Vec<u8>, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(buf, &mut pos);
                out.push((field, wire, Vec::new(), v));
            }
            1 => {
                out.push((field, wire, buf[pos..pos + 8].to_vec(), 0));
                pos += 8;
            }
            2 => {
                let n = varint(buf, &mut pos) as usize;
                out.push((field, wire, buf[pos..pos + n].to_vec(), 0));
                pos += n;
            }
            5 => {
                out.push((field, wire, buf[pos..pos + 4].to_vec(), 0));
                pos += 4;
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

fn parse_event(data: &[u8]) -> Ev {
    let mut ev = Ev::default();
    for (f, w, bytes, v) in fields(data) {
        match (f, w) {
            (1, 1) => ev.wall_time = f64::from_le_bytes(bytes.try_into().unwrap()),
            (2, 0) => ev.step = v as i64,
            (3, 2) => ev.file_version = Some(String::from_utf8(bytes).unwrap()),
            (5, 2) => {
                for (sf, sw, value, _) in fields(&bytes) {
                    assert_eq!((sf, sw), (1, 2), "Summary.value");
                    let mut tag = None;
                    let mut simple = None;
                    for (vf, vw, b, _) in fields(&value) {
                        match (vf, vw) {
                            (1, 2) => tag = Some(String::from_utf8(b).unwrap()),
                            (2, 5) => simple = Some(f32::from_le_bytes(b.try_into().unwrap())),
                            other => panic!("unexpected Value field {other:?}"),
                        }
                    }
                    ev.values.push((tag.unwrap(), simple.unwrap()));
                }
            }
            other => panic!("unexpected Event field {other:?}"),
        }
    }
    ev
}

fn read_records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        assert!(pos + 12 <= bytes.len(), "truncated header");
        let len_bytes = &bytes[pos..pos + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        assert_eq!(len_crc, masked(len_bytes), "length CRC");
        let data = &bytes[pos + 12..pos + 12 + len];
        let data_crc =
            u32::from_le_bytes(bytes[pos + 12 + len..pos + 16 + len].try_into().unwrap());
        assert_eq!(data_crc, masked(data), "data CRC");
        out.push(data.to_vec());
        pos += 16 + len;
    }
    assert_eq!(pos, bytes.len());
    out
}

#[test]
fn crc_reference_value() {
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
}

#[test]
fn written_scalars_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(dir.path().join("run1")).unwrap();
    let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("events.out.tfevents."), "{name}");

    let expected: Vec<(String, f32, i64)> = (0..25)
        .flat_map(|s| {
            [
                ("train/loss".to_string(), 2.0 / (s as f32 + 1.0), s * 10),
                ("val/top1".to_string(), s as f32 * 0.01, s * 10),
            ]
        })
        .chain([
            ("negative_step".to_string(), -1.5, -7),
            ("big".to_string(), 1e30, i64::MAX),
        ])
        .collect();
    for (tag, v, s) in &expected {
        w.add_scalar(tag, *v, *s).unwrap();
    }
    w.add_scalars(&[("lr", 1e-3), ("epoch", 3.0)], 99).unwrap();
    w.flush().unwrap();

    let bytes = std::fs::read(w.path()).unwrap();
    let records = read_records(&bytes);
    assert_eq!(records.len(), 1 + expected.len() + 2);

    let first = parse_event(&records[0]);
    assert_eq!(first.file_version.as_deref(), Some("brain.Event:2"));
    assert!(first.wall_time > 1.6e9);
    assert!(first.values.is_empty());

    for (rec, (tag, v, s)) in records[1..].iter().zip(&expected) {
        let ev = parse_event(rec);
        assert_eq!(ev.step, *s);
        assert!(ev.wall_time >= first.wall_time);
        assert_eq!(ev.values, vec![(tag.clone(), *v)]);
        assert!(ev.file_version.is_none());
    }
    let lr = parse_event(&records[records.len() - 2]);
    assert_eq!((lr.step, lr.values[0].0.as_str()), (99, "lr"));

    // The crate's own reader agrees.
    let scalars = read_scalars(w.path()).unwrap();
    assert_eq!(scalars.len(), expected.len() + 2);
    for (sc, (tag, v, s)) in scalars.iter().zip(&expected) {
        assert_eq!((&sc.tag, sc.value, sc.step), (tag, *v, *s));
    }
}

#[test]
fn two_writers_same_dir_get_distinct_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = EventWriter::create(dir.path()).unwrap();
    let b = EventWriter::create(dir.path()).unwrap();
    assert_ne!(a.path(), b.path());
}

#[test]
fn empty_tag_and_corruption_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(dir.path()).unwrap();
    assert!(w.add_scalar("", 1.0, 0).is_err());
    w.add_scalar("x", 1.0, 1).unwrap();
    w.flush().unwrap();
    let path = w.path().to_path_buf();
    drop(w);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0xFF; // flip a byte of the last record's data
    std::fs::write(&path, &bytes).unwrap();
    assert!(read_scalars(&path).is_err());
    std::fs::write(&path, &bytes[..n - 3]).unwrap();
    assert!(read_scalars(&path).is_err());
}
