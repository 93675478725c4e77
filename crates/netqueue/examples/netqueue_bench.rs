//! Benchmark: NetQueue vs beanstalkd on the same workload (issue 8). Bounded in count and time.
//!
//! Usage: netqueue_bench --netqueue-bin PATH [--beanstalkd PATH] [--messages N] [--size BYTES]
//!        [--latency-messages N] [--modes always,interval:5,never,memory]
//! Each configuration starts a fresh server on a loopback ephemeral port with a fresh data dir.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use remora_netqueue::{Client, Push};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WINDOW: usize = 256;
const BATCH: u32 = 32;

struct Args {
    netqueue: String,
    beanstalkd: String,
    messages: usize,
    size: usize,
    /// Messages of the push→reserve latency run, one per millisecond.
    latency_messages: usize,
    modes: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        netqueue: String::new(),
        beanstalkd: "/usr/bin/beanstalkd".into(),
        messages: 100_000,
        size: 512,
        latency_messages: 5000,
        modes: ["always", "interval:5", "never", "memory"]
            .map(String::from)
            .to_vec(),
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < v.len() {
        match v[i].as_str() {
            "--netqueue-bin" => a.netqueue = v[i + 1].clone(),
            "--beanstalkd" => a.beanstalkd = v[i + 1].clone(),
            "--messages" => a.messages = v[i + 1].parse().unwrap(),
            "--size" => a.size = v[i + 1].parse().unwrap(),
            "--latency-messages" => a.latency_messages = v[i + 1].parse().unwrap(),
            "--modes" => a.modes = v[i + 1].split(',').map(String::from).collect(),
            _ => panic!("unknown flag {}", v[i]),
        }
        i += 2;
    }
    assert!(!a.netqueue.is_empty(), "--netqueue-bin is required");
    a
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "server at {addr} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Default, Clone, Copy)]
struct Result {
    push1: f64,
    push4: f64,
    cons1: f64,
    cons4: f64,
    p50: f64,
    p99: f64,
}

// ---------------- NetQueue ----------------

async fn nq_push(addr: &str, conns: usize, n: usize, size: usize, queue: &str) -> f64 {
    let payload = Bytes::from(vec![b'x'; size]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let client = Client::connect(addr, None).await.unwrap();
        let payload = payload.clone();
        let queue = queue.to_string();
        tasks.push(tokio::spawn(async move {
            let mut inflight = FuturesUnordered::new();
            let mut i = c;
            loop {
                while inflight.len() < WINDOW && i < n {
                    let (cl, p, q) = (client.clone(), payload.clone(), queue.clone());
                    let id = i;
                    inflight.push(async move {
                        cl.push(Push::new(q, format!("m{id}"), p)).await.unwrap()
                    });
                    i += conns;
                }
                if inflight.next().await.is_none() {
                    break;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn nq_consume(addr: &str, consumers: usize, n: usize, queue: &str) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let client = Client::connect(addr, None).await.unwrap();
        let queue = queue.to_string();
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            loop {
                let ds = client
                    .reserve(
                        &[&queue],
                        BATCH,
                        Duration::from_millis(200),
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap();
                if ds.is_empty() {
                    return got;
                }
                got += ds.len();
                let acks: FuturesUnordered<_> = ds
                    .iter()
                    .map(|d| client.ack(&d.queue, &d.id, d.lease_id))
                    .collect();
                acks.for_each(|r| async move { r.unwrap() }).await;
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, n, "every message consumed once");
    // The last empty long-poll (200 ms) is not work: subtract it.
    n as f64 / (start.elapsed().as_secs_f64() - 0.2).max(1e-3)
}

fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

async fn nq_latency(addr: &str, size: usize, n: usize) -> (f64, f64) {
    let base = Instant::now();
    let consumer = Client::connect(addr, None).await.unwrap();
    let producer = Client::connect(addr, None).await.unwrap();
    let recv = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            let ds = consumer
                .reserve(
                    &["lat"],
                    16,
                    Duration::from_secs(5),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            let t = now_ns(base);
            for d in ds {
                let sent = u64::from_be_bytes(d.payload[..8].try_into().unwrap());
                lat.push(t - sent);
                consumer.ack(&d.queue, &d.id, d.lease_id).await.unwrap();
            }
        }
        lat
    });
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for i in 0..n {
        tick.tick().await;
        let mut p = vec![0u8; size];
        p[..8].copy_from_slice(&now_ns(base).to_be_bytes());
        producer
            .push(Push::new("lat", format!("l{i}"), p))
            .await
            .unwrap();
    }
    percentiles(recv.await.unwrap())
}

fn percentiles(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1000.0;
    (p(0.50), p(0.99))
}

async fn run_netqueue(a: &Args, fsync: &str) -> Result {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = tokio::process::Command::new(&a.netqueue);
    cmd.args(["--addr", &addr]);
    if fsync == "memory" {
        cmd.arg("--in-memory");
    } else {
        cmd.args(["--fsync", fsync, "--data-dir"]).arg(dir.path());
    }
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_port(&addr).await;
    // In this order: each drain reads what the push before it queued.
    let push1 = nq_push(&addr, 1, a.messages, a.size, "b1").await;
    let cons1 = nq_consume(&addr, 1, a.messages, "b1").await;
    let push4 = nq_push(&addr, 4, a.messages, a.size, "b4").await;
    let cons4 = nq_consume(&addr, 4, a.messages, "b4").await;
    let (p50, p99) = nq_latency(&addr, a.size, a.latency_messages).await;
    let r = Result {
        push1,
        push4,
        cons1,
        cons4,
        p50,
        p99,
    };
    let _ = child.kill().await;
    r
}

// ---------------- beanstalkd (text protocol, pipelined) ----------------

struct Bs {
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

impl Bs {
    async fn connect(addr: &str, tube: &str) -> Bs {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (r, w) = s.into_split();
        let mut b = Bs {
            rd: BufReader::new(r),
            wr: w,
        };
        b.wr.write_all(format!("use {tube}\r\nwatch {tube}\r\nignore default\r\n").as_bytes())
            .await
            .unwrap();
        for _ in 0..3 {
            b.line().await;
        }
        b
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.rd.read_line(&mut l).await.unwrap();
        assert!(!l.is_empty(), "beanstalkd closed the connection");
        l
    }
}

async fn bs_push(addr: &str, conns: usize, n: usize, size: usize, tube: &str) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let mut b = Bs::connect(addr, tube).await;
        let mine = (c..n).step_by(conns).count();
        tasks.push(tokio::spawn(async move {
            let mut cmd = format!("put 1024 0 60 {size}\r\n").into_bytes();
            cmd.extend(std::iter::repeat_n(b'x', size));
            cmd.extend_from_slice(b"\r\n");
            let (mut sent, mut done) = (0, 0);
            let mut buf = Vec::new();
            while done < mine {
                buf.clear();
                while sent < mine && sent - done < WINDOW {
                    buf.extend_from_slice(&cmd);
                    sent += 1;
                }
                if !buf.is_empty() {
                    b.wr.write_all(&buf).await.unwrap();
                }
                let l = b.line().await;
                assert!(l.starts_with("INSERTED"), "{l}");
                done += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn bs_consume(addr: &str, consumers: usize, n: usize, tube: &str) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let mut b = Bs::connect(addr, tube).await;
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            loop {
                // Pipeline BATCH reserves, then delete what came back: the same depth as NetQueue's batch.
                let cmds = "reserve-with-timeout 0\r\n".repeat(BATCH as usize);
                b.wr.write_all(cmds.as_bytes()).await.unwrap();
                let mut ids = VecDeque::new();
                for _ in 0..BATCH {
                    let l = b.line().await;
                    if let Some(rest) = l.strip_prefix("RESERVED ") {
                        let mut it = rest.split_whitespace();
                        let id: u64 = it.next().unwrap().parse().unwrap();
                        let len: usize = it.next().unwrap().parse().unwrap();
                        let mut body = vec![0u8; len + 2];
                        b.rd.read_exact(&mut body).await.unwrap();
                        ids.push_back(id);
                    } else {
                        assert!(l.starts_with("TIMED_OUT"), "{l}");
                    }
                }
                if ids.is_empty() {
                    return got;
                }
                let dels: String = ids.iter().map(|id| format!("delete {id}\r\n")).collect();
                b.wr.write_all(dels.as_bytes()).await.unwrap();
                for _ in 0..ids.len() {
                    let l = b.line().await;
                    assert!(l.starts_with("DELETED"), "{l}");
                }
                got += ids.len();
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, n);
    n as f64 / start.elapsed().as_secs_f64()
}

async fn bs_latency(addr: &str, size: usize, n: usize) -> (f64, f64) {
    let base = Instant::now();
    let mut consumer = Bs::connect(addr, "lat").await;
    let mut producer = Bs::connect(addr, "lat").await;
    let recv = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            consumer
                .wr
                .write_all(b"reserve-with-timeout 5\r\n")
                .await
                .unwrap();
            let l = consumer.line().await;
            let rest = l.strip_prefix("RESERVED ").unwrap_or_else(|| panic!("{l}"));
            let t = now_ns(base);
            let mut it = rest.split_whitespace();
            let id: u64 = it.next().unwrap().parse().unwrap();
            let len: usize = it.next().unwrap().parse().unwrap();
            let mut body = vec![0u8; len + 2];
            consumer.rd.read_exact(&mut body).await.unwrap();
            lat.push(t - u64::from_be_bytes(body[..8].try_into().unwrap()));
            consumer
                .wr
                .write_all(format!("delete {id}\r\n").as_bytes())
                .await
                .unwrap();
            consumer.line().await;
        }
        lat
    });
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for _ in 0..n {
        tick.tick().await;
        let mut cmd = format!("put 1024 0 60 {size}\r\n").into_bytes();
        let mut p = vec![b'x'; size];
        p[..8].copy_from_slice(&now_ns(base).to_be_bytes());
        cmd.extend(p);
        cmd.extend_from_slice(b"\r\n");
        producer.wr.write_all(&cmd).await.unwrap();
        producer.line().await;
    }
    percentiles(recv.await.unwrap())
}

async fn run_beanstalkd(a: &Args, mode: &str, dir: &Path) -> Result {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = tokio::process::Command::new(&a.beanstalkd);
    cmd.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-z",
        &(a.size * 2).max(65536).to_string(),
    ]);
    match mode {
        "memory" => {}
        "always" => {
            cmd.arg("-b").arg(dir).args(["-f", "0"]);
        }
        "never" => {
            cmd.arg("-b").arg(dir).arg("-F");
        }
        interval => {
            let ms = interval.trim_start_matches("interval:");
            cmd.arg("-b").arg(dir).args(["-f", ms]);
        }
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_port(&addr).await;
    // In this order: each drain reads what the push before it queued.
    let push1 = bs_push(&addr, 1, a.messages, a.size, "b1").await;
    let cons1 = bs_consume(&addr, 1, a.messages, "b1").await;
    let push4 = bs_push(&addr, 4, a.messages, a.size, "b4").await;
    let cons4 = bs_consume(&addr, 4, a.messages, "b4").await;
    let (p50, p99) = bs_latency(&addr, a.size, a.latency_messages).await;
    let r = Result {
        push1,
        push4,
        cons1,
        cons4,
        p50,
        p99,
    };
    let _ = child.kill().await;
    r
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    println!(
        "{} messages of {} bytes; pipelining window {WINDOW}, reserve batch {BATCH}; latency: {} messages at 1k/s",
        a.messages, a.size, a.latency_messages
    );
    println!(
        "| durability | server | push 1 conn/s | push 4 conn/s | reserve+ack 1/s | reserve+ack 4/s | push→reserve p50 µs | p99 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for mode in a.modes.iter().map(String::as_str) {
        let nq = run_netqueue(&a, mode).await;
        let dir = tempfile::tempdir().unwrap();
        let bs = run_beanstalkd(&a, mode, dir.path()).await;
        for (name, r) in [("netqueue", nq), ("beanstalkd", bs)] {
            println!(
                "| {mode} | {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                r.push1, r.push4, r.cons1, r.cons4, r.p50, r.p99
            );
        }
        ratios.push((
            mode,
            nq.push1 / bs.push1,
            nq.push4 / bs.push4,
            nq.cons1 / bs.cons1,
            nq.cons4 / bs.cons4,
        ));
    }
    println!("\nratios netqueue/beanstalkd (push 1, push 4, reserve+ack 1, reserve+ack 4):");
    for (mode, a, b, c, d) in ratios {
        println!("  {mode:<11} {a:.2}x {b:.2}x {c:.2}x {d:.2}x");
    }
}
