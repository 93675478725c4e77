//! Failover over a list of queue addresses, against real `remora-netqueue` processes: the
//! preferred queue killed with SIGKILL (connection reset) and stopped with SIGSTOP (no reply to
//! pings); the client moves to the standby, stays there, and goes back only when that dies.

use std::process::Stdio;
use std::time::Duration;

use remora_netqueue::{Client, ClientConfig, Push};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::eventually;

struct Proc {
    child: tokio::process::Child,
    addr: String,
}

/// A `remora-netqueue` in memory on `addr` (`127.0.0.1:0` for a free port).
async fn spawn(addr: &str) -> Proc {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_remora-netqueue"))
        .args(["--addr", addr, "--in-memory"])
        .env_remove("REMORA_QUEUE_TOKEN")
        .env_remove("REMORA_QUEUE_ADDR")
        .env_remove("REMORA_QUEUE_DATA_DIR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn remora-netqueue");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the queue prints its address")
        .unwrap()
        .expect("a line");
    let addr = line.strip_prefix("listening on ").unwrap().to_owned();
    Proc { child, addr }
}

fn signal(p: &Proc, sig: &str) {
    let pid = p.child.id().expect("running").to_string();
    let st = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(st.success());
}

async fn kill9(mut p: Proc) {
    p.child.start_kill().unwrap();
    let _ = p.child.wait().await;
}

/// Pushes until one is accepted (the client reconnects in the background meanwhile).
async fn push_ok(c: &Client, id: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match c.push(Push::new("q", id, "x")).await {
            Ok(_) => return,
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no push accepted within {within:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn depth(addr: &str) -> u64 {
    let c = Client::connect(addr, None).await.unwrap();
    c.stats()
        .await
        .unwrap()
        .queues
        .get("q")
        .map_or(0, |q| q.ready)
}

#[tokio::test]
async fn a_killed_queue_fails_over_to_the_standby_and_back_only_when_that_dies() {
    let a = spawn("127.0.0.1:0").await;
    let b = spawn("127.0.0.1:0").await;
    let list = format!("{},{}", a.addr, b.addr);
    let c = Client::connect(&list, None).await.unwrap();
    assert_eq!(c.addrs(), [a.addr.clone(), b.addr.clone()]);
    assert_eq!(
        c.active_addr(),
        Some(a.addr.as_str()),
        "the preferred first"
    );
    let mut changes = c.connection_changes();
    let epoch0 = *changes.borrow_and_update();
    push_ok(&c, "m1", Duration::from_secs(5)).await;
    assert_eq!(depth(&a.addr).await, 1);

    let a_addr = a.addr.clone();
    kill9(a).await;
    push_ok(&c, "m2", Duration::from_secs(10)).await;
    assert_eq!(c.active_addr(), Some(b.addr.as_str()));
    assert_eq!(c.failovers(), 1);
    assert!(
        *changes.borrow_and_update() > epoch0,
        "a failover is a connection change"
    );
    assert_eq!(
        depth(&b.addr).await,
        1,
        "the standby started empty: only m2"
    );

    // The preferred queue back on its address: the client stays on the standby...
    let a2 = spawn(&a_addr).await;
    for i in 0..20 {
        c.push(Push::new("q", format!("s{i}"), "x")).await.unwrap();
    }
    assert_eq!(c.active_addr(), Some(b.addr.as_str()));
    assert_eq!(depth(&a2.addr).await, 0);
    // ...until the standby dies: then back to the preferred one.
    kill9(b).await;
    push_ok(&c, "m3", Duration::from_secs(10)).await;
    assert_eq!(c.active_addr(), Some(a2.addr.as_str()));
    assert_eq!(c.failovers(), 2);
    assert_eq!(depth(&a2.addr).await, 1);
    kill9(a2).await;
}

#[tokio::test]
async fn a_queue_that_stops_answering_pings_is_left_for_the_next() {
    let a = spawn("127.0.0.1:0").await;
    let b = spawn("127.0.0.1:0").await;
    let cfg = ClientConfig {
        ping_timeout: Duration::from_millis(800),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&format!("{},{}", a.addr, b.addr), cfg)
        .await
        .unwrap();
    let mut sub = c.subscribe(vec!["t".into()]).await.unwrap();
    assert_eq!(c.active_addr(), Some(a.addr.as_str()));
    // Frozen, not dead: TCP stays up, only the pings go unanswered.
    signal(&a, "-STOP");
    eventually(
        Duration::from_secs(15),
        "failover on ping timeout",
        || async { c.active_addr() == Some(b.addr.as_str()) && c.is_connected() },
    )
    .await;
    assert_eq!(c.failovers(), 1);
    push_ok(&c, "m", Duration::from_secs(5)).await;
    assert_eq!(depth(&b.addr).await, 1);
    // The subscription moved too: an event published on the standby reaches it.
    let got = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            c.publish("t", bytes::Bytes::from_static(b"hello"))
                .await
                .unwrap();
            if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await
            {
                return ev;
            }
        }
    })
    .await
    .expect("the subscription resubscribed on the standby");
    assert_eq!(&got.payload[..], b"hello");
    signal(&a, "-CONT");
    kill9(a).await;
    kill9(b).await;
}

#[tokio::test]
async fn one_address_keeps_working_and_bad_lists_are_refused() {
    let a = spawn("127.0.0.1:0").await;
    let c = Client::connect(&a.addr, None).await.unwrap();
    assert_eq!(c.addrs(), std::slice::from_ref(&a.addr));
    push_ok(&c, "one", Duration::from_secs(5)).await;
    for bad in ["", "x", "127.0.0.1:1,,127.0.0.1:2"] {
        let e = Client::connect_lazy(bad, None).await.unwrap_err();
        assert!(
            matches!(e, remora_netqueue::ClientError::InvalidArgument(_)),
            "{bad:?}: {e}"
        );
    }
    kill9(a).await;
}
