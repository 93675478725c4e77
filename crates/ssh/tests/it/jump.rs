//! Jump chains over direct-tcpip: targets reachable only through a bastion
//! (network namespaces), one and two hops, one shared bastion connection for
//! many targets, the failing hop named.

use remora_ssh::{Connection, Pool, SshError};
use remora_testkit::netns::NetLab;
use remora_testkit::require;
use remora_testkit::sshd::SshHostOptions;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::{cfg, target, whoami};

#[tokio::test(flavor = "multi_thread")]
async fn one_and_two_hops() {
    let mut lab = require!(NetLab::new());
    let a = lab.bastion().unwrap();
    let b = lab.add_node_behind(&a).unwrap();
    let c = lab.add_node_behind(&b).unwrap();
    let ha = SshHostOptions::new().in_netns(&a).start().unwrap();
    let hb = SshHostOptions::new().in_netns(&b).start().unwrap();
    let hc = SshHostOptions::new().in_netns(&c).start().unwrap();

    // Not reachable directly.
    let direct = Connection::connect(&target(&hb), &cfg()).await;
    assert!(direct.is_err());

    let mut tb = target(&hb);
    tb.jumps = vec![target(&ha)];
    let conn = Connection::connect(&tb, &cfg()).await.unwrap();
    assert_eq!(whoami(&conn).await, hb.user());
    assert_eq!(conn.via().unwrap().name(), target(&ha).name());

    let mut tc = target(&hc);
    tc.jumps = vec![target(&ha), target(&hb)];
    let conn = Connection::connect(&tc, &cfg()).await.unwrap();
    assert_eq!(whoami(&conn).await, hc.user());
    // C's sshd saw the connection come from B.
    assert!(
        hc.log()
            .contains(&format!("Connection from {} ", c.parent_ip())),
        "{}",
        hc.log()
    );

    // Through the pool: hops are shared by both chains.
    let pool = Pool::new(cfg());
    let l = pool.lease("c", &tc).await.unwrap();
    assert_eq!(whoami(&l).await, hc.user());
    let l2 = pool.lease("b", &tb).await.unwrap();
    assert_eq!(whoami(&l2).await, hb.user());
    assert_eq!(pool.jump_connects_total.load(Ordering::Relaxed), 2);

    // The wrong hop order (C from A directly) fails naming A.
    let mut wrong = target(&hc);
    wrong.jumps = vec![target(&ha)];
    match Connection::connect(&wrong, &cfg()).await {
        Err(SshError::JumpFailed { hop, .. }) => assert_eq!(hop, target(&ha).name()),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("C reached from A"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_targets_share_one_bastion_connection() {
    let mut lab = require!(NetLab::new());
    let a = lab.bastion().unwrap();
    let b = lab.add_node_behind(&a).unwrap();
    let d = lab.add_node_behind(&a).unwrap();
    let ha = SshHostOptions::new().in_netns(&a).start().unwrap();
    let hb = SshHostOptions::new().in_netns(&b).start().unwrap();
    let hd = SshHostOptions::new().in_netns(&d).start().unwrap();
    let before = ha.connection_count();
    let pool = Arc::new(Pool::new(cfg()));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let h = if i % 2 == 0 { &hb } else { &hd };
        let mut t = target(h);
        t.jumps = vec![target(&ha)];
        let pool = pool.clone();
        let user = h.user().to_string();
        tasks.push(tokio::spawn(async move {
            // 50 server rows: 50 pool keys.
            let l = pool.lease(&format!("server-{i}"), &t).await.unwrap();
            let out = l
                .run(&format!("echo {i}; id -un"), Duration::from_secs(30))
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert_eq!(text, format!("{i}\n{user}\n"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let used = ha.connection_count() - before;
    assert!((1..=2).contains(&used), "{used} bastion connections");
    assert_eq!(pool.jump_connects_total.load(Ordering::Relaxed), 1);
    assert_eq!(pool.connects_total.load(Ordering::Relaxed), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_bastion_key_names_the_hop() {
    let mut lab = require!(NetLab::new());
    let a = lab.bastion().unwrap();
    let b = lab.add_node_behind(&a).unwrap();
    let mut ha = SshHostOptions::new().in_netns(&a).start().unwrap();
    let hb = SshHostOptions::new().in_netns(&b).start().unwrap();
    let bastion = target(&ha); // pinned to the current key
    ha.regenerate_host_key().unwrap();
    let mut tb = target(&hb);
    tb.jumps = vec![bastion.clone()];
    let pool = Pool::new(cfg());
    for res in [
        Connection::connect(&tb, &cfg()).await.map(|_| ()),
        pool.lease("b", &tb).await.map(|_| ()),
    ] {
        match res {
            Err(e @ SshError::JumpFailed { .. }) => {
                assert_eq!(e.code().as_str(), "jump_failed");
                let SshError::JumpFailed { hop, reason } = &e else {
                    unreachable!()
                };
                assert_eq!(*hop, bastion.name());
                assert!(reason.contains("host key mismatch"), "{reason}");
                assert!(reason.contains(&ha.host_key_fingerprint()), "{reason}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("connected through a bastion with a changed key"),
        }
    }
    // Nothing reached B.
    assert_eq!(hb.connection_count(), 0);
}
