//! The `parity-exec/1` lines an `exec:` runner sends: its handshake, and its replies,
//! with the excerpts quoted back in errors and reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::backend::exec::protocol::{excerpt, message_excerpt, parse_hello, parse_reply, Reply};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = parse_hello(line);
        if let Ok(Reply::Error(message)) = parse_reply(line, "run") {
            let _ = message_excerpt(&message);
        }
        let _ = excerpt(line);
    }
});
