//! COMPRESS=DEFLATE (RFC 4978) over a real connection: the client side compresses and
//! inflates with flate2 (raw deflate, sync flush), independently of the server's code.

mod common;

use common::{Imap, TestServer};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Where the line tagged `tag` (at a line start) ends, CRLF included.
fn tagged_end(text: &[u8], tag: &str) -> Option<usize> {
    let pat = format!("{tag} ");
    let pat = pat.as_bytes();
    let mut at = 0;
    while at + pat.len() <= text.len() {
        let pos = at + text[at..].windows(pat.len()).position(|w| w == pat)?;
        if pos == 0 || text[..pos].ends_with(b"\r\n") {
            let end = text[pos..].windows(2).position(|w| w == b"\r\n")?;
            return Some(pos + end + 2);
        }
        at = pos + 1;
    }
    None
}

/// A compressed IMAP client on a connection that has already sent COMPRESS DEFLATE.
struct Zclient {
    s: TcpStream,
    enc: Compress,
    dec: Decompress,
    text: Vec<u8>,
    n: u32,
}

impl Zclient {
    fn send(&mut self, data: &[u8]) {
        let mut out = Vec::with_capacity(data.len() + 1024);
        let mut input = data;
        loop {
            let before = self.enc.total_in();
            self.enc
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("compress");
            input = &input[(self.enc.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(64 * 1024);
        }
        self.s.write_all(&out).expect("send");
    }

    /// Inflated input up to and including the line tagged `tag`.
    fn until(&mut self, tag: &str) -> String {
        loop {
            if let Some(end) = tagged_end(&self.text, tag) {
                let answer = String::from_utf8_lossy(&self.text[..end]).into_owned();
                self.text.drain(..end);
                return answer;
            }
            let mut raw = [0u8; 65536];
            let n = self.s.read(&mut raw).expect("read");
            assert!(
                n > 0,
                "closed before {tag}: {}",
                String::from_utf8_lossy(&self.text)
            );
            let mut input = &raw[..n];
            while !input.is_empty() {
                let mut buf = vec![0u8; 256 * 1024];
                let (i0, o0) = (self.dec.total_in(), self.dec.total_out());
                self.dec
                    .decompress(input, &mut buf, FlushDecompress::Sync)
                    .expect("server output is deflate");
                let made = (self.dec.total_out() - o0) as usize;
                self.text.extend_from_slice(&buf[..made]);
                input = &input[(self.dec.total_in() - i0) as usize..];
            }
        }
    }

    fn cmd(&mut self, cmd: &str) -> String {
        self.n += 1;
        let tag = format!("z{}", self.n);
        self.send(format!("{tag} {cmd}\r\n").as_bytes());
        self.until(&tag)
    }
}

#[test]
fn compressed_session_appends_fetches_and_refuses_twice() {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    // Not before login (RFC 4978 §3: authenticated or selected state).
    let mut pre = Imap::connect(s.imap);
    let (_, t) = pre.cmd("COMPRESS DEFLATE");
    assert!(t.starts_with("BAD"), "{t}");
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert!(c.ok("CAPABILITY").contains("COMPRESS=DEFLATE"));
    let (_, t) = c.cmd("COMPRESS LZW");
    assert!(t.starts_with("BAD"), "{t}");
    let (_, t) = c.cmd("COMPRESS DEFLATE");
    assert_eq!(t, "OK DEFLATE active");
    let mut z = Zclient {
        s: c.into_stream(),
        enc: Compress::new(Compression::default(), false),
        dec: Decompress::new(false),
        text: Vec::new(),
        n: 0,
    };
    z.s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let sel = z.cmd("SELECT INBOX");
    assert!(sel.contains("OK [READ-WRITE]"), "{sel}");
    // A 300 KB literal: the server inflates it in steps.
    let body: String = (0..6000)
        .map(|i| format!("line {i} of a long compressed message\r\n"))
        .collect();
    let msg = format!("Subject: squeezed\r\nMessage-ID: <z@x.test>\r\n\r\n{body}");
    z.n += 1;
    let tag = format!("z{}", z.n);
    z.send(format!("{tag} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    let a = z.until(&tag);
    assert!(a.contains(&format!("{tag} OK [APPENDUID")), "{a}");
    let f = z.cmd("FETCH 1 BODY.PEEK[]");
    assert!(
        f.contains(&format!("{{{}}}\r\n{msg}", msg.len())),
        "the message comes back whole ({} octets)",
        f.len()
    );
    let again = z.cmd("COMPRESS DEFLATE");
    assert!(again.contains("NO [COMPRESSIONACTIVE]"), "{again}");
    let stored = s.messages("users/alice");
    assert_eq!(stored.len(), 1);
    assert!(String::from_utf8_lossy(&stored[0]).contains("line 5999 of a long"));
    // Input that is not deflate ends that session only.
    z.s.write_all(&[0xff; 32]).expect("garbage");
    let mut rest = [0u8; 64];
    z.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(z.s.read(&mut rest), Ok(0) | Err(_)), "closed");
    let mut d = Imap::login(s.imap, "alice", "alice-pw");
    d.ok("NOOP");
}
