//! The `email` transport through a real OpenSMTPD: headers, parts, body contents, unsubscribe
//! signatures, the envelope sender and failures; and the SMTP sink itself.

use hc_tests::smtp::SmtpSink;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Speaks SMTP by hand: one command, one (possibly multi-line) reply whose code must be `code`.
async fn converse(stream: &mut BufReader<TcpStream>, command: &str, code: &str) {
    if !command.is_empty() {
        stream
            .get_mut()
            .write_all(command.as_bytes())
            .await
            .unwrap();
    }
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        assert!(line.starts_with(code), "{command:?} got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
}

#[tokio::test]
async fn sink_delivers_any_recipient_and_cleans_up_when_dropped() {
    let sink = SmtpSink::start().await.unwrap();
    let stream = TcpStream::connect(("127.0.0.1", sink.port()))
        .await
        .unwrap();
    let mut stream = BufReader::new(stream);
    converse(&mut stream, "", "220").await;
    converse(&mut stream, "EHLO test\r\n", "250").await;
    converse(&mut stream, "MAIL FROM:<bounce@example.org>\r\n", "250").await;
    converse(&mut stream, "RCPT TO:<alice@example.net>\r\n", "250").await;
    converse(&mut stream, "DATA\r\n", "354").await;
    converse(
        &mut stream,
        "Subject: hello\r\nX-Folded: one\r\n two\r\n\r\nbody\r\n.\r\n",
        "250",
    )
    .await;
    converse(&mut stream, "QUIT\r\n", "221").await;

    let messages = sink.wait_for_messages(1).await.unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.header("subject"), Some("hello"));
    assert_eq!(message.header("X-Folded"), Some("one two"));
    assert_eq!(message.header("Return-Path"), Some("<bounce@example.org>"));
    assert_eq!(message.header("Delivered-To"), Some("alice@example.net"));

    let port = sink.port();
    drop(sink);
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}
