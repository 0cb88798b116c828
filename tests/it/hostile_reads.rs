//! Hostile files where parity expects data (issue 13, "unbounded reads"): devices and
//! FIFOs behind data-file names, `.npz` bombs with honest and lying headers, a sparse
//! 64 GiB `.npy`. Each must end in a one-line error and exit 2, quickly and in bounded
//! memory. Every run has a deadline (killed past it), an address-space cap that keeps a
//! regression from taking the machine down, and its peak RSS measured with `wait4`.

use crate::common::{copy_suite, s};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one bounded run of the binary did.
struct Bounded {
    /// The exit code; `None` when it was killed (by the deadline or a signal).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Peak resident set size of the child, in MiB (`ru_maxrss`).
    peak_mib: u64,
    timed_out: bool,
}

/// Longest a refusal may take (a debug binary on a loaded machine): far shorter than
/// reading 4 GiB, and a hang fails the test instead of stalling it.
const DEADLINE: Duration = Duration::from_secs(30);

/// The peak RSS a refusal may reach.
const MAX_PEAK_MIB: u64 = 500;

/// Runs `parity ARGS` under [`DEADLINE`] and a 4 GiB address-space cap, with the
/// default read limit.
fn run(args: &[&str]) -> Bounded {
    run_limited(args, None)
}

/// [`run`] with `PARITY_MAX_READ_BYTES` set to `limit`.
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which also gives its rusage
fn run_limited(args: &[&str], limit: Option<&str>) -> Bounded {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parity"));
    cmd.args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("PARITY_MAX_READ_BYTES")
        .envs(limit.map(|v| ("PARITY_MAX_READ_BYTES", v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("run parity");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: plain-old-data out-parameters for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(done >= 0, "wait4: {}", std::io::Error::last_os_error());
        if done == pid {
            break;
        }
        if started.elapsed() > DEADLINE {
            timed_out = true;
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let done = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            assert_eq!(done, pid);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let exited = libc::WIFEXITED(status);
    Bounded {
        code: exited.then(|| libc::WEXITSTATUS(status)),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        peak_mib: usage.ru_maxrss as u64 / 1024,
        timed_out,
    }
}

/// Asserts a quick, small, one-line refusal: exit 2, `needle` on the only stderr line.
#[track_caller]
fn assert_refused(o: &Bounded, needle: &str) {
    assert!(
        !o.timed_out,
        "still running after {DEADLINE:?}; stderr: {}",
        o.stderr
    );
    assert_eq!(o.code, Some(2), "stderr: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", o.stderr);
    assert!(lines[0].contains(needle), "`{needle}` not in: {}", o.stderr);
    assert!(
        o.peak_mib < MAX_PEAK_MIB,
        "peak RSS {} MiB (at most {MAX_PEAK_MIB}): {}",
        o.peak_mib,
        o.stderr
    );
}

/// Asserts that `check` ran quickly and in bounded memory, and reported the case that
/// reads the hostile file as an error (exit 2) on one line naming it.
#[track_caller]
fn assert_case_error(o: &Bounded, needle: &str) {
    assert!(
        !o.timed_out,
        "still running after {DEADLINE:?}; stdout: {}",
        o.stdout
    );
    assert_eq!(
        o.code,
        Some(2),
        "stdout: {}\nstderr: {}",
        o.stdout,
        o.stderr
    );
    let lines: Vec<&str> = o.stdout.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(
        lines.len(),
        1,
        "`{needle}` not on one line of: {}",
        o.stdout
    );
    assert!(lines[0].trim_start().starts_with("error: "), "{}", lines[0]);
    assert!(
        o.peak_mib < MAX_PEAK_MIB,
        "peak RSS {} MiB: {}",
        o.peak_mib,
        o.stdout
    );
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(s(path)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

const DEVICE: &str = "not a regular file (a character device, through a symlink to /dev/zero)";

#[test]
fn a_dev_zero_input_is_refused_by_check() {
    let (_tmp, suite) = copy_suite("mlp");
    let input = suite.join("test_data_set_0/input_0.pb");
    std::fs::remove_file(&input).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &input).unwrap();
    let o = run(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_case_error(&o, &format!("{}: {DEVICE}", input.display()));
}

#[test]
fn a_dev_zero_manifest_is_refused_by_check() {
    let (_tmp, suite) = copy_suite("mlp");
    let manifest = suite.join("parity.toml");
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    let o = run(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_refused(&o, &format!("{}: {DEVICE}", manifest.display()));
}

#[test]
fn a_fifo_input_is_refused_by_check_without_hanging() {
    let (_tmp, suite) = copy_suite("mlp");
    let input = suite.join("test_data_set_0/input_0.pb");
    std::fs::remove_file(&input).unwrap();
    mkfifo(&input);
    let o = run(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_case_error(
        &o,
        &format!("{}: not a regular file (a FIFO)", input.display()),
    );
}

#[test]
fn inspect_compare_merge_and_data_refuse_dev_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let link = |name: &str| {
        let p = tmp.path().join(name);
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        p
    };
    let (model, a, b, ra, rb) = (
        link("model.onnx"),
        link("a.npy"),
        link("b.npz"),
        link("a.json"),
        link("b.json"),
    );
    let table = link("t.csv");
    let o = run(&["inspect", s(&model)]);
    assert_refused(&o, &format!("{}: {DEVICE}", model.display()));
    let o = run(&["compare", s(&a), s(&a)]);
    assert_refused(&o, &format!("{}: {DEVICE}", a.display()));
    let o = run(&["compare", s(&b), s(&b)]);
    assert_refused(&o, &format!("{}: {DEVICE}", b.display()));
    let o = run(&["merge", s(&ra), s(&rb)]);
    assert_refused(&o, &format!("{}: {DEVICE}", ra.display()));
    let o = run(&["data", "drift", s(&table), s(&table)]);
    assert_refused(&o, &format!("{}: {DEVICE}", table.display()));
}

/// An `.npy` header for `len` bytes of u8.
fn npy_header(len: u64) -> Vec<u8> {
    let dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({len},), }}");
    let pad = (10 + dict.len() + 1).next_multiple_of(64) - 10;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((pad as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out.resize(10 + pad - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes a one-member `.npz` bomb at `path`: member `x.npy` is `header` followed by
/// `gib` GiB of zeros, deflated (about 1 MiB per GiB). The zip's size fields declare
/// `declared` bytes uncompressed (the truth when `None`); its CRC is the truth.
fn write_bomb(path: &Path, header: &[u8], gib: u64, declared: Option<u64>) {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() / 500 + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Full).unwrap();
        assert_eq!(c.total_in(), data.len() as u64);
        out
    }
    const CHUNK: usize = 64 << 20;
    let zeros = vec![0u8; CHUNK];
    let (head, block) = (deflate(header), deflate(&zeros));
    let mut crc = Crc::new();
    crc.update(header);
    let mut chunk_crc = Crc::new();
    chunk_crc.update(&zeros);
    let chunks = gib * (1 << 30) / CHUNK as u64;
    let mut data = head;
    for _ in 0..chunks {
        data.extend_from_slice(&block);
        crc.combine(&chunk_crc);
    }
    data.extend([0x03, 0x00]); // a final, empty fixed-Huffman block
    let size = declared.unwrap_or(header.len() as u64 + chunks * CHUNK as u64);
    let name = b"x.npy";
    // Zip64 extra field: uncompressed then compressed size.
    let mut extra = vec![0x01, 0x00, 16, 0];
    extra.extend(size.to_le_bytes());
    extra.extend((data.len() as u64).to_le_bytes());
    let common = |out: &mut Vec<u8>| {
        out.extend(45u16.to_le_bytes()); // version needed: zip64
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(8u16.to_le_bytes()); // deflate
        out.extend([0, 0, 0x21, 0]); // 1980-01-01 00:00
        out.extend(crc.sum().to_le_bytes());
        out.extend(u32::MAX.to_le_bytes());
        out.extend(u32::MAX.to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend((extra.len() as u16).to_le_bytes());
    };
    let mut zip = b"PK\x03\x04".to_vec();
    common(&mut zip);
    zip.extend(name);
    zip.extend(&extra);
    zip.extend(&data);
    let directory = zip.len() as u32;
    zip.extend(b"PK\x01\x02");
    zip.extend(45u16.to_le_bytes()); // made by
    common(&mut zip);
    zip.extend([0; 14]); // comment length, disk, attributes, local header at offset 0
    zip.extend(name);
    zip.extend(&extra);
    let directory_len = zip.len() as u32 - directory;
    zip.extend(b"PK\x05\x06");
    zip.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend(directory_len.to_le_bytes());
    zip.extend(directory.to_le_bytes());
    zip.extend([0, 0]);
    std::fs::write(path, zip).unwrap();
}

/// The audit's bomb: about 10 MB that inflates to 10 GiB.
const BOMB_GIB: u64 = 10;

#[test]
fn npz_bombs_are_refused_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let inflated = BOMB_GIB << 30;
    let honest = npy_header(inflated);
    let lying = npy_header(4);
    let cases = [
        // The header declares all 10 GiB: refused before inflating anything.
        (
            "honest.npz",
            honest.clone(),
            None,
            format!(
                "member 'x.npy': its .npy header declares {} bytes: the archive would inflate to {} bytes or more, more than the read limit of 4 GiB",
                honest.len() as u64 + inflated,
                honest.len() as u64 + inflated
            ),
        ),
        // The header declares 4 bytes; the zip's sizes tell the truth, then lie too.
        (
            "lying.npz",
            lying.clone(),
            None,
            "member 'x.npy': holds more data than its .npy header declares (shape (4,) of u8 needs 4 bytes)".to_string(),
        ),
        (
            "lying-zip.npz",
            lying.clone(),
            Some(lying.len() as u64 + 4),
            "member 'x.npy': file is larger than its declared uncompressed size".to_string(),
        ),
    ];
    for (name, header, declared, problem) in cases {
        let bomb = tmp.path().join(name);
        write_bomb(&bomb, &header, BOMB_GIB, declared);
        let size = std::fs::metadata(&bomb).unwrap().len();
        assert!(size < 12 << 20, "{name} is {size} bytes");
        let o = run(&["compare", s(&bomb), s(&bomb)]);
        assert_refused(&o, &format!("{}: {problem}", bomb.display()));
    }
    // In a suite, as a data set.
    let (_tmp, suite) = copy_suite("mlp");
    std::fs::remove_dir_all(suite.join("test_data_set_0")).unwrap();
    let bomb = suite.join("test_data_set_0.npz");
    write_bomb(&bomb, &lying, BOMB_GIB, None);
    let o = run(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_case_error(&o, "holds more data than its .npy header declares");
}

#[test]
fn duplicate_npz_members_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one.npy"), tmp.path().join("two.npy"));
    std::fs::write(&one, [npy_header(1), vec![1]].concat()).unwrap();
    std::fs::write(&two, [npy_header(1), vec![2]].concat()).unwrap();
    // Python's zipfile writes duplicate names (with a warning); so can the zip crate's
    // raw layer, but renaming a member in place is simplest.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, p) in [("x.npy", &one), ("y.npy", &two)] {
        zip.start_file(name, options).unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(p).unwrap()).unwrap();
    }
    let mut bytes = zip.finish().unwrap().into_inner();
    for i in 0..bytes.len() - 5 {
        if &bytes[i..i + 5] == b"y.npy" {
            bytes[i..i + 5].copy_from_slice(b"x.npy");
        }
    }
    let npz = tmp.path().join("dup.npz");
    std::fs::write(&npz, bytes).unwrap();
    let o = run(&["compare", s(&npz), s(&npz)]);
    assert_refused(
        &o,
        &format!(
            "{}: member 'x.npy' appears twice in the archive",
            npz.display()
        ),
    );
}

#[test]
fn a_sparse_64_gib_npy_is_refused_in_bounded_memory() {
    let (_tmp, suite) = copy_suite("mlp");
    let set = suite.join("test_data_set_0");
    std::fs::remove_file(set.join("input_0.pb")).unwrap();
    let big = set.join("input_0.npy");
    // `truncate -s 64G` after an honest header: 64 GiB of u8 that takes no disk.
    let header = npy_header(64 << 30);
    std::fs::write(&big, &header).unwrap();
    let size = header.len() as u64 + (64 << 30);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(size)
        .unwrap();
    let refusal = format!(
        "{}: {size} bytes, more than the read limit of 4 GiB (set PARITY_MAX_READ_BYTES to raise it)",
        big.display()
    );
    let o = run(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_case_error(&o, &refusal);
    let o = run(&["compare", s(&big), s(&big)]);
    assert_refused(&o, &refusal);
}

#[test]
fn the_read_limit_is_set_by_parity_max_read_bytes() {
    let model = crate::common::models().join("mlp/model.onnx");
    let size = std::fs::metadata(&model).unwrap().len();
    assert!(size > 64 << 10 && size < 1 << 20, "{size}");
    let o = run_limited(&["inspect", s(&model)], Some("64K"));
    assert_refused(
        &o,
        &format!(
            "{}: {size} bytes, more than the read limit of 64 KiB (set PARITY_MAX_READ_BYTES to raise it)",
            model.display()
        ),
    );
    for enough in ["1M", "none", &size.to_string()] {
        let o = run_limited(&["inspect", s(&model)], Some(enough));
        assert_eq!(o.code, Some(0), "{enough}: {}", o.stderr);
    }
    let o = run_limited(&["inspect", s(&model)], Some("lots"));
    assert_refused(
        &o,
        "PARITY_MAX_READ_BYTES: `lots` is not a size (a number, or with K/M/G, e.g. 512M or 8G; or `none`)",
    );
}
