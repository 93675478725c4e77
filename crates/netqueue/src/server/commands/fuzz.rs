//! Property tests over decoding and dispatch: no input may panic the server, and every reply
//! must encode to something a client can decode. Bounded case counts keep `cargo test` fast.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::dispatch_for_test;
use crate::protocol::{decode_reply, encode_reply, encode_request, Request};
use crate::server::shared::Shared;
use crate::server::ServerConfig;

fn shared() -> Arc<Shared> {
    Shared::for_test(ServerConfig {
        max_queue_messages: 50,
        max_queue_bytes: 4096,
        ..ServerConfig::default()
    })
}

fn arb_request() -> impl Strategy<Value = Request> {
    let name = "[a-z*]{0,4}";
    let payload = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    prop_oneof![
        (any::<u16>(), name).prop_map(|(version, token)| Request::Hello { version, token }),
        (name, name, any::<u8>(), 0u64..5000, payload.clone(), name).prop_map(
            |(queue, id, priority, delay_ms, payload, affinity)| {
                Request::Push {
                    queue,
                    id,
                    priority,
                    delay_ms,
                    payload,
                    affinity,
                }
            }
        ),
        (
            proptest::collection::vec(name, 0..4),
            any::<u32>(),
            0u64..3,
            any::<u64>(),
            name
        )
            .prop_map(
                |(queues, max, wait_ms, lease_ms, consumer)| Request::Reserve {
                    queues,
                    max,
                    wait_ms,
                    lease_ms,
                    consumer
                }
            ),
        (name, any::<bool>(), proptest::collection::vec(name, 0..4)).prop_map(
            |(consumer, all, keys)| Request::Release {
                consumer,
                all,
                keys
            }
        ),
        (name, name, 0u64..20).prop_map(|(queue, id, lease_id)| Request::Ack {
            queue,
            id,
            lease_id
        }),
        (name, name, 0u64..20, any::<u64>()).prop_map(|(queue, id, lease_id, delay_ms)| {
            Request::Nack {
                queue,
                id,
                lease_id,
                delay_ms,
            }
        }),
        (name, name, 0u64..20, any::<u64>()).prop_map(|(queue, id, lease_id, lease_ms)| {
            Request::Touch {
                queue,
                id,
                lease_id,
                lease_ms,
            }
        }),
        (name, name).prop_map(|(queue, id)| Request::Cancel { queue, id }),
        Just(Request::Stats),
        Just(Request::Ping),
        (name, payload).prop_map(|(topic, payload)| Request::Publish { topic, payload }),
        proptest::collection::vec(name, 0..4).prop_map(|topics| Request::Subscribe { topics }),
    ]
}

/// A valid request body with some bytes overwritten, cut or extended.
fn arb_mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        arb_request(),
        any::<u64>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        0usize..8,
        proptest::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(req, rid, flips, cut, extra)| {
            let mut b = encode_request(rid, &req).to_vec();
            for (i, v) in flips {
                let n = b.len();
                b[i.index(n)] = v;
            }
            b.truncate(b.len().saturating_sub(cut));
            b.extend(extra);
            b
        })
}

fn check(shared: &Arc<Shared>, body: Vec<u8>) -> Result<(), TestCaseError> {
    if let Some((rid, reply)) = dispatch_for_test(shared, Bytes::from(body)) {
        let decoded = decode_reply(encode_reply(rid, &reply));
        prop_assert_eq!(decoded, Ok((rid, reply)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..8)) {
        let shared = shared();
        for b in bodies {
            check(&shared, b)?;
        }
    }

    #[test]
    fn mutated_requests_never_panic(bodies in proptest::collection::vec(arb_mutated(), 1..16)) {
        let shared = shared();
        for b in bodies {
            check(&shared, b)?;
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_request_sequences_keep_broker_consistent(reqs in proptest::collection::vec(arb_request(), 1..40)) {
        let shared = shared();
        for (i, r) in reqs.iter().enumerate() {
            check(&shared, encode_request(i as u64 + 1, r).to_vec())?;
            // Drive reserves synchronously too (dispatch defers them to a future).
            if let Request::Reserve { queues, max, lease_ms, .. } = r {
                let _ = shared.with_broker(|b, now| {
                    b.reserve(queues, (*max).min(5), Duration::from_millis((*lease_ms).clamp(1, 1 << 40)), 1 << 20, now)
                });
            }
        }
        let stats = shared.lock().broker.stats();
        for (name, q) in stats.queues {
            prop_assert_eq!(q.total, q.ready + q.leased + q.delayed, "queue {}", name);
            prop_assert_eq!(q.ready, q.ready_by_priority.values().sum::<u64>());
            prop_assert!(q.total <= 50 && q.bytes <= 4096);
        }
    }
}
