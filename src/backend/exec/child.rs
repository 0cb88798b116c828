//! One runner process of the `exec:` backend: started from an argument vector (no shell),
//! spoken to by lines on stdin/stdout with a deadline on every answer, its stderr kept
//! as a short tail for error messages. A runner that exits, hangs or speaks garbage is
//! [`Failure::Broken`]: the caller drops it (which stops it) and starts a fresh one.

use super::protocol::{self, Hello, Reply};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A protocol line longer than this is cut (it is garbage anyway: lines are short).
const MAX_LINE: u64 = 64 << 10;
/// Bytes of the runner's stderr kept for error messages.
const STDERR_KEPT: usize = 8 << 10;
/// Lines of that tail quoted in an error message.
const STDERR_LINES: usize = 6;
/// How long a runner may take to exit after its stdin closes before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for the last stderr bytes of a runner that exited or was killed.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The runner answered `error MESSAGE`: it is still in a known state and stays in use.
    Refused(String),
    /// The runner exited, timed out or broke the protocol: it must be replaced.
    Broken(String),
}

impl Failure {
    /// The message, whichever kind of failure it is.
    pub fn message(self) -> String {
        match self {
            Failure::Refused(m) | Failure::Broken(m) => m,
        }
    }
}

/// A running runner process; stopped when dropped.
pub struct Child {
    process: std::process::Child,
    stdin: Option<ChildStdin>,
    /// stdout's lines, or the one overlong line that ended them.
    lines: Receiver<Result<String, Overlong>>,
    stderr: Arc<StderrTail>,
    timeout: Duration,
}

impl Child {
    /// Starts `argv` and reads its handshake line.
    pub fn start(argv: &[String], timeout: Duration) -> Result<(Child, Hello), String> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| "the runner command is empty".to_string())?;
        let mut process = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = process.stdout.take() {
            std::thread::spawn(move || forward_lines(stdout, tx));
        }
        let stderr = Arc::new(StderrTail::default());
        if let Some(pipe) = process.stderr.take() {
            let tail = Arc::clone(&stderr);
            std::thread::spawn(move || tail.collect(pipe));
        }
        let mut child = Child {
            stdin: process.stdin.take(),
            process,
            lines,
            stderr,
            timeout,
        };
        let line = child.read_line("handshake").map_err(Failure::message)?;
        let hello = protocol::parse_hello(&line).map_err(|e| child.with_stderr(e, false))?;
        Ok((child, hello))
    }

    /// Sends one request line (`verb` names it in messages) and reads the reply.
    pub fn request(&mut self, line: &str, verb: &str) -> Result<(), Failure> {
        self.stderr.clear();
        let sent = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if sent.is_err() {
            return Err(Failure::Broken(self.exited(&format!("reply to `{verb}`"))));
        }
        let reply = self.read_line(&format!("reply to `{verb}`"))?;
        match protocol::parse_reply(&reply, verb) {
            Ok(Reply::Ok) => Ok(()),
            Ok(Reply::Error(message)) if message.is_empty() => Err(Failure::Refused(
                self.with_stderr(format!("the runner failed `{verb}` (no message)"), false),
            )),
            Ok(Reply::Error(message)) => Err(Failure::Refused(format!(
                "the runner failed `{verb}`: {}",
                protocol::message_excerpt(&message)
            ))),
            Err(garbage) => Err(Failure::Broken(self.with_stderr(garbage, false))),
        }
    }

    /// The next line of stdout within the deadline; `awaited` names it in messages
    /// (`handshake`, ``reply to `run` ``).
    fn read_line(&mut self, awaited: &str) -> Result<String, Failure> {
        match self.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(Overlong)) => {
                // The rest of that line would be read as the next reply: stop the runner.
                let _ = self.process.kill();
                let _ = self.process.wait();
                let message = format!(
                    "the runner's {awaited} is longer than {} KiB, the limit of a parity-exec/1 line; parity stopped it",
                    MAX_LINE >> 10
                );
                Err(Failure::Broken(self.with_stderr(message, true)))
            }
            Err(RecvTimeoutError::Timeout) => {
                // Killing first lets the stderr pipe close, so its tail is complete.
                let _ = self.process.kill();
                let _ = self.process.wait();
                let message = format!(
                    "the runner sent no {awaited} within {} s (PARITY_EXEC_TIMEOUT); parity stopped it",
                    fmt_secs(self.timeout)
                );
                Err(Failure::Broken(self.with_stderr(message, true)))
            }
            Err(RecvTimeoutError::Disconnected) => Err(Failure::Broken(self.exited(awaited))),
        }
    }

    /// The message for a runner whose stdout or stdin closed before the `awaited` line:
    /// its exit status, or that it closed the pipe and was stopped.
    fn exited(&mut self, awaited: &str) -> String {
        let message = match wait_for_exit(&mut self.process, EXIT_GRACE) {
            Some(status) => format!("the runner exited ({status}) before its {awaited}"),
            None => {
                let _ = self.process.kill();
                let _ = self.process.wait();
                format!("the runner closed its stdout before its {awaited}; parity stopped it")
            }
        };
        self.with_stderr(message, true)
    }

    /// Appends the tail of the runner's stderr to `message`; with `ended`, waits briefly
    /// for the pipe to close so the last words of a dead runner are included.
    fn with_stderr(&self, message: String, ended: bool) -> String {
        match self
            .stderr
            .tail(if ended { STDERR_DRAIN } else { Duration::ZERO })
        {
            Some(tail) => format!("{message}; stderr: {tail}"),
            None => message,
        }
    }
}

impl Drop for Child {
    /// Closes stdin (the runner's signal to exit), waits a little, then kills.
    fn drop(&mut self) {
        drop(self.stdin.take());
        if wait_for_exit(&mut self.process, EXIT_GRACE).is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// Polls for the exit of `process` for up to `grace`.
fn wait_for_exit(
    process: &mut std::process::Child,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match process.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// A stdout line of [`MAX_LINE`] bytes without its end: the runner broke the protocol.
#[derive(Debug)]
struct Overlong;

/// Sends every stdout line (without its line ending) until the runner closes stdout, or
/// until a line runs past [`MAX_LINE`] (then [`Overlong`], and nothing after it).
fn forward_lines(stdout: impl Read, tx: mpsc::Sender<Result<String, Overlong>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) if n as u64 == MAX_LINE && buf.last() != Some(&b'\n') => {
                let _ = tx.send(Err(Overlong));
                return;
            }
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        if tx.send(Ok(line)).is_err() {
            return;
        }
    }
}

/// The last bytes a runner wrote to stderr, and whether the pipe has closed.
#[derive(Default)]
struct StderrTail {
    state: Mutex<(VecDeque<u8>, bool)>,
    closed: Condvar,
}

impl StderrTail {
    /// Reads the pipe to its end, keeping the last [`STDERR_KEPT`] bytes.
    fn collect(&self, mut pipe: impl Read) {
        let mut chunk = [0u8; 4096];
        loop {
            let n = pipe.read(&mut chunk).unwrap_or(0);
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            if n == 0 {
                state.1 = true;
                self.closed.notify_all();
                return;
            }
            state.0.extend(&chunk[..n]);
            let excess = state.0.len().saturating_sub(STDERR_KEPT);
            state.0.drain(..excess);
        }
    }

    /// Forgets what was written so far: each request's errors quote only its own stderr.
    fn clear(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0.clear();
        }
    }

    /// The last lines written, joined by ` | `; waits up to `drain` for the pipe to close.
    fn tail(&self, drain: Duration) -> Option<String> {
        let state = self.state.lock().ok()?;
        let (state, _) = self
            .closed
            .wait_timeout_while(state, drain, |s| !s.1)
            .ok()?;
        let bytes: Vec<u8> = state.0.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let start = lines.len().saturating_sub(STDERR_LINES);
        (!lines.is_empty()).then(|| lines[start..].join(" | "))
    }
}

/// Seconds as written in messages: `60`, `0.5`.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

// The runners of these tests are `sh` scripts.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    const HELLO: &str = r#"echo 'parity-exec/1 {"name": "sh", "version": "1", "device": "cpu"}'"#;

    /// A runner written in sh: the handshake, then `script`.
    fn sh(script: &str) -> Result<(Child, Hello), String> {
        let argv = ["sh", "-c", &format!("{HELLO}; {script}")].map(String::from);
        Child::start(&argv, Duration::from_secs(30))
    }

    #[test]
    fn replies_keep_the_runner_refusals_too() {
        let (mut child, hello) =
            sh("read a; echo ok; read b; echo 'error no kernel'; read c; echo ok").unwrap();
        assert_eq!(hello.name, "sh");
        assert_eq!(child.request("load {}\n", "load"), Ok(()));
        assert_eq!(
            child.request("run {}\n", "run"),
            Err(Failure::Refused(
                "the runner failed `run`: no kernel".into()
            ))
        );
        assert_eq!(child.request("run {}\n", "run"), Ok(()));
    }

    #[test]
    fn an_exit_names_the_status_and_the_stderr_tail() {
        let (mut child, _) = sh("read a; echo first >&2; echo last words >&2; exit 7").unwrap();
        assert_eq!(
            child.request("run {}\n", "run"),
            Err(Failure::Broken(
                "the runner exited (exit status: 7) before its reply to `run`; stderr: first | last words"
                    .into()
            ))
        );
        // The pipe is closed now: a second request is refused the same way, not a hang.
        assert!(matches!(
            child.request("run {}\n", "run"),
            Err(Failure::Broken(_))
        ));
    }

    #[test]
    fn garbage_is_broken_and_a_silent_start_says_so() {
        let (mut child, _) = sh("read a; echo 'Loading weights...'").unwrap();
        let Err(Failure::Broken(message)) = child.request("load {}\n", "load") else {
            panic!("garbage must break the runner");
        };
        assert!(message.starts_with("the runner answered `load` with `Loading weights...`"));
        let err = Child::start(&["true".to_string()], Duration::from_secs(30))
            .err()
            .unwrap();
        assert_eq!(
            err,
            "the runner exited (exit status: 0) before its handshake"
        );
        assert_eq!(
            Child::start(&[], Duration::from_secs(1)).err().unwrap(),
            "the runner command is empty"
        );
    }

    #[test]
    fn seconds_print_without_noise() {
        assert_eq!(fmt_secs(Duration::from_secs(60)), "60");
        assert_eq!(fmt_secs(Duration::from_millis(2500)), "2.5");
    }

    #[test]
    fn an_overlong_line_stops_the_runner_and_does_not_leak_into_the_next_reply() {
        let script = "read a; head -c 70000 /dev/zero | tr '\\0' z; echo; echo ok; read b; echo ok";
        let (mut child, _) = sh(script).unwrap();
        let err = child.request("run {}\n", "run").unwrap_err();
        let Failure::Broken(message) = err else {
            panic!("{err:?}")
        };
        assert!(
            message.starts_with("the runner's reply to `run` is longer than 64 KiB"),
            "{message}"
        );
    }
}
