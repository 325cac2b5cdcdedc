use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn limits(per_addr_rate: u32, total_rate: u32) -> AdmissionLimits {
    AdmissionLimits {
        max_connections: 100,
        max_connections_per_address: 100,
        connection_rate_per_address: per_addr_rate,
        connection_rate_total: total_rate,
        max_pending_connects: 100,
    }
}

#[test]
fn bucket_allows_its_burst_then_refills_at_its_rate() {
    let t0 = Instant::now();
    let mut b = TokenBucket::full(10, t0);
    for _ in 0..10 {
        assert!(b.ready(t0));
        b.take();
    }
    assert!(!b.ready(t0), "burst is the rate");
    assert!(!b.ready(t0 + Duration::from_millis(50)));
    assert!(
        b.ready(t0 + Duration::from_millis(100)),
        "one token per 100 ms"
    );
    b.take();
    assert!(!b.ready(t0 + Duration::from_millis(150)));
    // Refill stops at the burst: a long pause does not bank tokens.
    let later = t0 + Duration::from_secs(60);
    assert!(b.is_full(later));
    for _ in 0..10 {
        assert!(b.ready(later));
        b.take();
    }
    assert!(!b.ready(later));
}

#[test]
fn bucket_tolerates_a_clock_going_backwards() {
    let t0 = Instant::now() + Duration::from_secs(5);
    let mut b = TokenBucket::full(1, t0);
    b.take();
    assert!(!b.ready(t0 - Duration::from_secs(1)));
}

#[test]
fn per_address_rate_refuses_one_address_and_serves_another() {
    let t0 = Instant::now();
    let mut s = AdmissionState::new(limits(5, 1000), t0);
    for _ in 0..5 {
        assert_eq!(s.admit(ip("10.0.0.1"), t0), Ok(()));
    }
    assert_eq!(s.admit(ip("10.0.0.1"), t0), Err(Refusal::ConnectionRate));
    assert_eq!(s.admit(ip("10.0.0.2"), t0), Ok(()));
    assert_eq!(
        s.admit(ip("10.0.0.1"), t0 + Duration::from_millis(200)),
        Ok(())
    );
    assert_eq!((s.open(), s.pending()), (7, 7));
}

#[test]
fn total_rate_caps_many_addresses() {
    let t0 = Instant::now();
    let mut s = AdmissionState::new(limits(5, 3), t0);
    for i in 1..=3 {
        assert_eq!(s.admit(ip(&format!("10.0.0.{i}")), t0), Ok(()));
    }
    assert_eq!(s.admit(ip("10.0.0.9"), t0), Err(Refusal::ConnectionRate));
    // A refused stranger leaves no entry behind.
    assert_eq!(s.tracked_addresses(), 3);
}

#[test]
fn caps_on_open_pending_and_per_address_are_released() {
    let t0 = Instant::now();
    let mut s = AdmissionState::new(
        AdmissionLimits {
            max_connections: 4,
            max_connections_per_address: 2,
            connection_rate_per_address: 100,
            connection_rate_total: 100,
            max_pending_connects: 3,
        },
        t0,
    );
    let a = ip("192.0.2.1");
    assert_eq!(s.admit(a, t0), Ok(()));
    assert_eq!(s.admit(a, t0), Ok(()));
    assert_eq!(s.admit(a, t0), Err(Refusal::ConnectionsPerAddress));
    assert_eq!(s.admit(ip("192.0.2.2"), t0), Ok(()));
    assert_eq!(s.admit(ip("192.0.2.3"), t0), Err(Refusal::PendingConnects));
    // Two complete CONNECT: pending slots free, open ones do not.
    s.connected();
    s.connected();
    assert_eq!(s.admit(ip("192.0.2.3"), t0), Ok(()));
    assert_eq!(s.admit(ip("192.0.2.4"), t0), Err(Refusal::MaxConnections));
    s.release(a, false);
    assert_eq!(s.admit(a, t0), Ok(()));
    s.release(a, true);
    s.release(a, false);
    assert_eq!((s.open(), s.pending()), (2, 2));
}

#[test]
fn idle_addresses_are_forgotten_so_the_map_stays_bounded() {
    let t0 = Instant::now();
    let mut s = AdmissionState::new(limits(10, 100_000), t0);
    for i in 0..1000u32 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        assert_eq!(s.admit(a, t0), Ok(()));
        s.release(a, true);
    }
    let held = ip("10.9.9.9");
    assert_eq!(s.admit(held, t0), Ok(()));
    assert_eq!(s.tracked_addresses(), 1001);
    // Too soon: their buckets are not full yet, forgetting them would hand
    // each a fresh burst.
    s.sweep(t0 + Duration::from_millis(50));
    assert_eq!(s.tracked_addresses(), 1001);
    // Admitting after a second sweeps on its own; the address with an open
    // connection stays.
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(s.admit(ip("10.8.8.8"), t1), Ok(()));
    assert_eq!(s.tracked_addresses(), 2);
    s.release(held, true);
    assert_eq!(s.admit(held, t1), Ok(()));
}

#[test]
fn ipv6_is_limited_per_64_and_mapped_v4_counts_as_v4() {
    let t0 = Instant::now();
    let mut s = AdmissionState::new(limits(1, 100), t0);
    assert_eq!(s.admit(ip("2001:db8::1"), t0), Ok(()));
    assert_eq!(
        s.admit(ip("2001:db8::ffff:2"), t0),
        Err(Refusal::ConnectionRate)
    );
    assert_eq!(s.admit(ip("2001:db8:0:1::1"), t0), Ok(()));
    assert_eq!(s.admit(ip("10.0.0.1"), t0), Ok(()));
    assert_eq!(
        s.admit(ip("::ffff:10.0.0.1"), t0),
        Err(Refusal::ConnectionRate)
    );
}

#[test]
fn refusals_are_logged_at_most_once_per_second_per_reason() {
    let t0 = Instant::now();
    let mut s = AdmissionState::new(limits(1, 1), t0);
    assert_eq!(s.log_refusal(Refusal::ConnectionRate, t0), Some(0));
    assert_eq!(s.log_refusal(Refusal::ConnectionRate, t0), None);
    assert_eq!(s.log_refusal(Refusal::ConnectionRate, t0), None);
    assert_eq!(s.log_refusal(Refusal::MaxConnections, t0), Some(0));
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(s.log_refusal(Refusal::ConnectionRate, t1), Some(2));
}

#[test]
fn tickets_release_on_drop_and_pending_on_connect() {
    let admission = Admission::new(limits(10, 10));
    let now = Instant::now();
    let mut a = admission.admit(ip("127.0.0.1"), now).expect("admitted");
    let b = admission.admit(ip("127.0.0.1"), now).expect("admitted");
    assert_eq!(admission.counts(), (2, 2));
    a.connected();
    a.connected();
    assert_eq!(admission.counts(), (2, 1));
    drop(a);
    assert_eq!(admission.counts(), (1, 1));
    drop(b);
    assert_eq!(admission.counts(), (0, 0));
}
