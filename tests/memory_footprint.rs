//! Guards the per-connection memory that the idle-connection benchmark
//! measures: every idle client holds one connection task and one session
//! handle, so growth here multiplies by the number of devices on a site.
//! The bounds are today's sizes plus a little room; a change that needs more
//! should say why (benchmarks/RESULTS.md has the measured bytes per idle
//! connection).

use std::sync::Arc;

use bulwark_broker::registry::SessionHandle;
use bulwark_tests::{Broker, ListenerInfo, MemoryStore};

#[tokio::test]
async fn connection_task_and_session_stay_small() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (r, w) = stream.into_split();
    let broker = Broker::new(Default::default(), Arc::new(MemoryStore::new()));
    let info = Arc::new(ListenerInfo {
        name: "size".into(),
        allow_anonymous: true,
        min_factors: Default::default(),
    });
    // What the listeners spawn: the future holds the admission ticket.
    let ticket = broker
        .admission()
        .admit(addr.ip(), std::time::Instant::now())
        .expect("admitted");
    let stream2 = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (r2, w2) = stream2.into_split();
    let admitted =
        bulwark_broker::serve_admitted(broker.clone(), r2, w2, addr, info.clone(), ticket, None);
    let admitted_bytes = std::mem::size_of_val(&admitted);
    let task = bulwark_broker::serve(broker, r, w, addr, info);
    let task_bytes = std::mem::size_of_val(&task);
    // 976: 960 plus the 16-byte certificate identity the transport hands
    // over (dropped after CONNECT, but its slot is part of the future).
    assert!(task_bytes <= 976, "connection future is {task_bytes} bytes");
    assert!(
        admitted_bytes <= 976,
        "admitted connection future is {admitted_bytes} bytes"
    );
    let handle_bytes = std::mem::size_of::<SessionHandle>();
    assert!(
        // 248 since the queue, in-flight and incoming-QoS 2 collections are
        // allocated on demand (an idle session holds none of them).
        handle_bytes <= 256,
        "session handle is {handle_bytes} bytes"
    );
}
