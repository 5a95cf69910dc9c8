//! TensorBoard event files: [`EventWriter`] writes scalars, [`read_scalars`]
//! reads them back.
//!
//! Reference formats:
//! * TFRecord framing (TensorFlow `tensorflow/core/lib/io/record_writer.cc`):
//!   each record is `u64 LE length`, `u32 LE masked CRC32C(length bytes)`,
//!   `data`, `u32 LE masked CRC32C(data)`.
//! * `Event` protobuf (`tensorflow/core/util/event.proto`): `double wall_time = 1`,
//!   `int64 step = 2`, oneof `string file_version = 3` / `Summary summary = 5`.
//! * `Summary` (`tensorflow/core/framework/summary.proto`): `repeated Value value = 1`,
//!   `Value { string tag = 1; float simple_value = 2; }`.
//!
//! The protobuf wire format is encoded by hand (varints, fixed64, fixed32,
//! length-delimited fields); no protobuf library is involved. The first record
//! of every file is the `file_version: "brain.Event:2"` event TensorBoard
//! expects, and the file name is `events.out.tfevents.<unix secs>.<host>`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crc32c::masked_crc32c;
use crate::error::{ReportError, Result};

/// Version string TensorBoard looks for in the first event of a file.
pub const FILE_VERSION: &str = "brain.Event:2";

// ---------------------------------------------------------------------------
// Protobuf wire-format encoding.

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(out, (field << 3) | wire);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes an `Event` header (`wall_time`, `step`) followed by `body`, which
/// must already hold the encoded oneof field.
fn encode_event(wall_time: f64, step: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + body.len());
    put_key(&mut out, 1, WIRE_FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    // proto3 omits default scalars; TensorBoard treats a missing step as 0.
    if step != 0 {
        put_key(&mut out, 2, WIRE_VARINT);
        // int64 negatives are encoded as 10-byte two's complement varints.
        put_varint(&mut out, step as u64);
    }
    out.extend_from_slice(body);
    out
}

fn encode_file_version_event(wall_time: f64) -> Vec<u8> {
    let mut body = Vec::new();
    put_bytes(&mut body, 3, FILE_VERSION.as_bytes());
    encode_event(wall_time, 0, &body)
}

fn encode_scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let mut val = Vec::with_capacity(tag.len() + 8);
    put_bytes(&mut val, 1, tag.as_bytes());
    put_key(&mut val, 2, WIRE_FIXED32);
    val.extend_from_slice(&value.to_le_bytes());
    let mut summary = Vec::with_capacity(val.len() + 4);
    put_bytes(&mut summary, 1, &val);
    let mut body = Vec::with_capacity(summary.len() + 4);
    put_bytes(&mut body, 5, &summary);
    encode_event(wall_time, step, &body)
}

/// Frames `data` as one TFRecord.
fn frame_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Host name for the file name: `/proc/sys/kernel/hostname`, then `$HOSTNAME`,
/// then `$COMPUTERNAME`, then `localhost`; anything outside `[A-Za-z0-9._-]`
/// becomes `_`.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Writer.

/// Writes a TensorBoard event file of scalar summaries.
///
/// Records are buffered; call [`EventWriter::flush`] to make them visible to a
/// running TensorBoard (dropping the writer also flushes, ignoring errors).
///
/// ```no_run
/// # fn main() -> amflow_report::Result<()> {
/// let mut w = amflow_report::EventWriter::create("runs/exp1")?;
/// w.add_scalar("train/loss", 0.93, 1)?;
/// w.flush()?;
/// # Ok(()) }
/// ```
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl EventWriter {
    /// Creates `dir` (and parents) if needed and a new
    /// `events.out.tfevents.<unix secs>.<host>` file in it, then writes and
    /// flushes the `file_version` event. If that name is taken (two writers in
    /// the same second), `.<pid>.<n>` is appended; existing files are never
    /// overwritten.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
        let wall = now_secs();
        let base = format!("events.out.tfevents.{}.{}", wall as u64, host_name());
        let pid = std::process::id();
        let mut attempt = 0u32;
        let (path, file) = loop {
            let name = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}.{pid}.{attempt}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1;
                }
                Err(e) => return Err(ReportError::io(path, e)),
            }
        };
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        writer.write_record(&encode_file_version_event(wall))?;
        writer.flush()?;
        Ok(writer)
    }

    /// Path of the event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a scalar `value` for `tag` at `step`, stamped with the current
    /// wall-clock time. Tags may contain `/` to group charts in TensorBoard
    /// (`train/loss`, `val/top1`). An empty tag is rejected.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<()> {
        self.add_scalar_at(tag, value, step, now_secs())
    }

    /// Like [`EventWriter::add_scalar`] with an explicit `wall_time` in seconds
    /// since the Unix epoch.
    pub fn add_scalar_at(
        &mut self,
        tag: &str,
        value: f32,
        step: i64,
        wall_time: f64,
    ) -> Result<()> {
        if tag.is_empty() {
            return Err(ReportError::invalid("scalar tag must not be empty"));
        }
        self.write_record(&encode_scalar_event(wall_time, step, tag, value))
    }

    /// Appends several scalars at the same `step` (one event each).
    pub fn add_scalars(&mut self, scalars: &[(&str, f32)], step: i64) -> Result<()> {
        let wall = now_secs();
        for (tag, value) in scalars {
            self.add_scalar_at(tag, *value, step, wall)?;
        }
        Ok(())
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| ReportError::io(&self.path, e))
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let rec = frame_record(data);
        self.out
            .write_all(&rec)
            .map_err(|e| ReportError::io(&self.path, e))
    }
}

// ---------------------------------------------------------------------------
// Reader (scalars only).

/// One scalar read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarEvent {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// Training step.
    pub step: i64,
    /// Summary tag.
    pub tag: String,
    /// Scalar value.
    pub value: f32,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// A decoded protobuf field: number and payload.
enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

fn next_field<'a>(c: &mut Cursor<'a>) -> Option<(u64, Field<'a>)> {
    let key = c.varint()?;
    let field = match key & 7 {
        WIRE_VARINT => Field::Varint(c.varint()?),
        WIRE_FIXED64 => Field::Fixed64(c.take(8)?.try_into().ok()?),
        WIRE_LEN => {
            let n = usize::try_from(c.varint()?).ok()?;
            Field::Bytes(c.take(n)?)
        }
        WIRE_FIXED32 => Field::Fixed32(c.take(4)?.try_into().ok()?),
        _ => return None,
    };
    Some((key >> 3, field))
}

fn decode_scalars(event: &[u8], out: &mut Vec<ScalarEvent>) -> Option<()> {
    let mut wall_time = 0.0;
    let mut step = 0i64;
    let mut values: Vec<(String, f32)> = Vec::new();
    let mut c = Cursor { buf: event, pos: 0 };
    while !c.done() {
        match next_field(&mut c)? {
            (1, Field::Fixed64(b)) => wall_time = f64::from_le_bytes(b),
            (2, Field::Varint(v)) => step = v as i64,
            (5, Field::Bytes(summary)) => {
                let mut s = Cursor {
                    buf: summary,
                    pos: 0,
                };
                while !s.done() {
                    if let (1, Field::Bytes(value)) = next_field(&mut s)? {
                        let mut v = Cursor { buf: value, pos: 0 };
                        let mut tag = None;
                        let mut simple = None;
                        while !v.done() {
                            match next_field(&mut v)? {
                                (1, Field::Bytes(t)) => {
                                    tag = Some(String::from_utf8_lossy(t).into_owned())
                                }
                                (2, Field::Fixed32(b)) => simple = Some(f32::from_le_bytes(b)),
                                _ => {}
                            }
                        }
                        if let (Some(t), Some(x)) = (tag, simple) {
                            values.push((t, x));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.extend(values.into_iter().map(|(tag, value)| ScalarEvent {
        wall_time,
        step,
        tag,
        value,
    }));
    Some(())
}

/// Reads every `simple_value` scalar from a TensorBoard event file, checking
/// both CRCs of every record. Other event kinds (file version, images,
/// histograms) are skipped.
pub fn read_scalars(path: impl AsRef<Path>) -> Result<Vec<ScalarEvent>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ReportError::io(path, e))?;
    let corrupt = |msg: String| ReportError::Corrupt {
        path: path.to_path_buf(),
        msg,
    };
    let mut out = Vec::new();
    let mut c = Cursor {
        buf: &bytes,
        pos: 0,
    };
    let mut index = 0usize;
    while !c.done() {
        let start = c.pos;
        let header = c
            .take(12)
            .ok_or_else(|| corrupt(format!("record {index} at byte {start}: truncated header")))?;
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc32c(len_bytes).to_le_bytes() != len_crc {
            return Err(corrupt(format!("record {index}: length CRC mismatch")));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
        let len = usize::try_from(len)
            .map_err(|_| corrupt(format!("record {index}: length {len} too large")))?;
        let data = c
            .take(len)
            .ok_or_else(|| corrupt(format!("record {index}: truncated data")))?;
        let data_crc = c
            .take(4)
            .ok_or_else(|| corrupt(format!("record {index}: truncated data CRC")))?;
        if masked_crc32c(data).to_le_bytes() != data_crc {
            return Err(corrupt(format!("record {index}: data CRC mismatch")));
        }
        decode_scalars(data, &mut out)
            .ok_or_else(|| corrupt(format!("record {index}: malformed Event protobuf")))?;
        index += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_encoding() {
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let mut v = Vec::new();
        put_varint(&mut v, (-1i64) as u64);
        assert_eq!(
            v,
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
        let mut v = Vec::new();
        put_varint(&mut v, 127);
        put_varint(&mut v, 128);
        assert_eq!(v, [0x7F, 0x80, 0x01]);
    }

    #[test]
    fn scalar_event_bytes() {
        let e = encode_scalar_event(1.5, 3, "a", 2.0);
        let mut expect = vec![0x09];
        expect.extend_from_slice(&1.5f64.to_le_bytes());
        expect.extend_from_slice(&[0x10, 3, 0x2A, 10, 0x0A, 8, 0x0A, 1, b'a', 0x15]);
        expect.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(e, expect);
    }
}
