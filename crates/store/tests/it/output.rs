//! Job output: chunks appended with the job's byte counters, each seq once, read back bytes-exact.

use crate::{job, server};
use remora_domain::Stream;
use remora_store::{OutputChunk, Store};

async fn output(s: &Store) {
    let a = s.insert_server(&server("alpha")).await.unwrap();
    let j1 = job(&a.id, 1000, "echo one");
    s.insert_job(&j1).await.unwrap();
    let chunks = vec![
        OutputChunk {
            seq: 0,
            stream: Stream::Stdout,
            data: b"a\n\n".to_vec(),
        },
        OutputChunk {
            seq: 1,
            stream: Stream::Stderr,
            data: vec![0xe2, 0x82],
        },
    ];
    s.append_output(&j1.id, &chunks, 3, 2, false).await.unwrap();
    s.append_output(
        &j1.id,
        &[OutputChunk {
            seq: 2,
            stream: Stream::Stderr,
            data: vec![0xac],
        }],
        3,
        3,
        true,
    )
    .await
    .unwrap();
    assert!(
        s.append_output(
            &j1.id,
            &[OutputChunk {
                seq: 2,
                stream: Stream::Stdout,
                data: vec![1]
            }],
            3,
            3,
            true
        )
        .await
        .is_err(),
        "a seq is written once"
    );
    // The same chunk again (a retry after an unconfirmed commit) is kept once, not an error.
    s.append_output(
        &j1.id,
        &[OutputChunk {
            seq: 2,
            stream: Stream::Stderr,
            data: vec![0xac],
        }],
        3,
        3,
        true,
    )
    .await
    .unwrap();
    let (out, err) = s.job_output(&j1.id).await.unwrap();
    assert_eq!(out, b"a\n\n");
    assert_eq!(String::from_utf8(err).unwrap(), "€");
    assert_eq!(s.output_chunks(&j1.id, 0).await.unwrap().len(), 2);
    let j = s.get_job(&j1.id).await.unwrap().unwrap();
    assert_eq!((j.stdout_bytes, j.stderr_bytes, j.truncated), (3, 3, true));
}
on_both!(output);
