//! The SMTP client used for outbound delivery (RFC 5321 §3, §4): EHLO (HELO fallback),
//! STARTTLS (opportunistic or required, RFC 3207), AUTH PLAIN (RFC 4954), pipelined
//! MAIL/RCPT (RFC 2920), SIZE, 8BITMIME, SMTPUTF8, DATA with dot-stuffing.

use base64::Engine;
use postcore_protocol::smtp::client::{ServerReply, dot_stuff, parse_reply};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Why a conversation step failed.
#[derive(Debug)]
pub enum ClientError {
    /// Network failure, timeout or a broken reply: try again later.
    Io(String),
    /// The server answered with an error.
    Reply(ServerReply),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => f.write_str(e),
            ClientError::Reply(r) => f.write_str(&r.one_line()),
        }
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One SMTP client connection.
pub struct SmtpClient {
    conn: Option<Conn>,
    buf: Vec<u8>,
    timeout: Duration,
    /// EHLO keywords (upper case), empty after HELO.
    pub extensions: Vec<String>,
    /// The peer's address, for logs.
    pub peer: String,
}

/// Accepts any server certificate: opportunistic TLS (RFC 7435) as MTAs do without DANE.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client configuration for outbound SMTP (TLS 1.2/1.3, any certificate accepted).
pub fn tls_config() -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| anyhow::anyhow!("TLS client versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

impl SmtpClient {
    /// Connects and reads the greeting; `implicit_tls` starts TLS first (port 465 style).
    pub async fn connect(
        addr: std::net::SocketAddr,
        server_name: &str,
        connect_timeout: Duration,
        timeout: Duration,
        implicit_tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<SmtpClient, ClientError> {
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Io(format!("connect to {addr}: timed out")))?
            .map_err(|e| ClientError::Io(format!("connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut c = SmtpClient {
            conn: Some(Conn::Plain(tcp)),
            buf: Vec::new(),
            timeout,
            extensions: Vec::new(),
            peer: addr.to_string(),
        };
        if let Some(cfg) = implicit_tls {
            c.handshake(cfg, server_name).await?;
        }
        let greeting = c.read_reply().await?;
        if !greeting.is_positive() {
            return Err(ClientError::Reply(greeting));
        }
        Ok(c)
    }

    async fn handshake(
        &mut self,
        cfg: &Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<(), ClientError> {
        let Some(Conn::Plain(tcp)) = self.conn.take() else {
            return Err(ClientError::Io("TLS already active".into()));
        };
        let name = ServerName::try_from(server_name.to_string()).unwrap_or_else(|_| {
            ServerName::try_from("localhost".to_string()).expect("static name")
        });
        let tls = tokio::time::timeout(
            self.timeout,
            tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| ClientError::Io("TLS handshake timed out".into()))?
        .map_err(|e| ClientError::Io(format!("TLS handshake: {e}")))?;
        self.conn = Some(Conn::Tls(Box::new(tls)));
        Ok(())
    }

    /// True once TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self.conn, Some(Conn::Tls(_)))
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let t = self.timeout;
        let res = match self.conn.as_mut() {
            Some(Conn::Plain(s)) => tokio::time::timeout(t, s.write_all(data)).await,
            Some(Conn::Tls(s)) => {
                tokio::time::timeout(t, async {
                    s.write_all(data).await?;
                    s.flush().await
                })
                .await
            }
            None => return Err(ClientError::Io("not connected".into())),
        };
        res.map_err(|_| ClientError::Io("write timed out".into()))?
            .map_err(|e| ClientError::Io(format!("write: {e}")))
    }

    /// Reads one complete reply.
    pub async fn read_reply(&mut self) -> Result<ServerReply, ClientError> {
        loop {
            if let Some(r) = parse_reply(&mut self.buf)
                .map_err(|e| ClientError::Io(format!("bad reply: {e}")))?
            {
                return Ok(r);
            }
            let mut tmp = [0u8; 8192];
            let t = self.timeout;
            let n = match self.conn.as_mut() {
                Some(Conn::Plain(s)) => tokio::time::timeout(t, s.read(&mut tmp)).await,
                Some(Conn::Tls(s)) => tokio::time::timeout(t, s.read(&mut tmp)).await,
                None => return Err(ClientError::Io("not connected".into())),
            }
            .map_err(|_| ClientError::Io("timed out waiting for reply".into()))?
            .map_err(|e| ClientError::Io(format!("read: {e}")))?;
            if n == 0 {
                return Err(ClientError::Io("connection closed by peer".into()));
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    async fn command(&mut self, line: &str) -> Result<ServerReply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    fn has(&self, ext: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e == ext || e.starts_with(&format!("{ext} ")))
    }

    /// EHLO (falling back to HELO), then STARTTLS when offered or required, then AUTH.
    pub async fn hello(
        &mut self,
        helo: &str,
        tls: &Arc<rustls::ClientConfig>,
        server_name: &str,
        require_tls: bool,
        auth: Option<(&str, &str)>,
    ) -> Result<(), ClientError> {
        self.ehlo(helo).await?;
        if !self.is_tls() && self.has("STARTTLS") {
            let r = self.command("STARTTLS").await?;
            if r.code == 220 {
                self.buf.clear();
                self.handshake(tls, server_name).await?;
                self.ehlo(helo).await?;
            } else if require_tls {
                return Err(ClientError::Reply(r));
            }
        }
        if require_tls && !self.is_tls() {
            return Err(ClientError::Io("TLS required but not offered".into()));
        }
        if let Some((user, pass)) = auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
            let r = self.command(&format!("AUTH PLAIN {token}")).await?;
            if r.code != 235 {
                return Err(ClientError::Reply(r));
            }
        }
        Ok(())
    }

    /// EHLO/HELO and AUTH without any TLS (relay hosts configured with `tls = none`).
    pub async fn hello_plain(
        &mut self,
        helo: &str,
        auth: Option<(&str, &str)>,
    ) -> Result<(), ClientError> {
        self.ehlo(helo).await?;
        if let Some((user, pass)) = auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
            let r = self.command(&format!("AUTH PLAIN {token}")).await?;
            if r.code != 235 {
                return Err(ClientError::Reply(r));
            }
        }
        Ok(())
    }

    async fn ehlo(&mut self, helo: &str) -> Result<(), ClientError> {
        let r = self.command(&format!("EHLO {helo}")).await?;
        if r.is_positive() {
            self.extensions = r
                .lines()
                .skip(1)
                .map(|l| l.trim().to_ascii_uppercase())
                .collect();
            return Ok(());
        }
        let r = self.command(&format!("HELO {helo}")).await?;
        if !r.is_positive() {
            return Err(ClientError::Reply(r));
        }
        self.extensions.clear();
        Ok(())
    }

    /// Sends one message. Returns per-recipient results (the RCPT reply, or the final DATA
    /// reply for accepted recipients). An error means the whole transaction failed.
    pub async fn send(
        &mut self,
        from: &str,
        rcpts: &[String],
        data: &[u8],
        smtputf8: bool,
    ) -> Result<Vec<ServerReply>, ClientError> {
        let mut mail = format!("MAIL FROM:<{from}>");
        if self.has("SIZE") {
            mail.push_str(&format!(" SIZE={}", data.len()));
        }
        if self.has("8BITMIME") && !data.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if smtputf8 {
            if !self.has("SMTPUTF8") {
                return Err(ClientError::Reply(ServerReply {
                    code: 553,
                    text: "5.6.7 peer does not support SMTPUTF8".into(),
                }));
            }
            mail.push_str(" SMTPUTF8");
        }
        let pipelining = self.has("PIPELINING");
        let mut replies = Vec::with_capacity(rcpts.len());
        let mail_reply;
        if pipelining {
            // RFC 2920: MAIL and every RCPT in one write, then read the replies in order.
            let mut batch = format!("{mail}\r\n");
            for r in rcpts {
                batch.push_str(&format!("RCPT TO:<{r}>\r\n"));
            }
            self.write(batch.as_bytes()).await?;
            mail_reply = self.read_reply().await?;
            for _ in rcpts {
                replies.push(self.read_reply().await?);
            }
        } else {
            mail_reply = self.command(&mail).await?;
            if mail_reply.is_positive() {
                for r in rcpts {
                    replies.push(self.command(&format!("RCPT TO:<{r}>")).await?);
                }
            }
        }
        if !mail_reply.is_positive() {
            let _ = self.command("RSET").await;
            return Err(ClientError::Reply(mail_reply));
        }
        if !replies.iter().any(ServerReply::is_positive) {
            let _ = self.command("RSET").await;
            return Ok(replies);
        }
        let r = self.command("DATA").await?;
        if r.code != 354 {
            let _ = self.command("RSET").await;
            return Err(ClientError::Reply(r));
        }
        self.write(&dot_stuff(data)).await?;
        let end = self.read_reply().await?;
        Ok(replies
            .into_iter()
            .map(|r| if r.is_positive() { end.clone() } else { r })
            .collect())
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
        if let Some(Conn::Tls(mut s)) = self.conn.take() {
            let _ = s.shutdown().await;
        }
    }
}
