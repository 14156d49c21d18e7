//! The mapping rule: question name, CNAME chains in any order, poisoning
//! shapes, codes and classes that map nothing, TTLs along the chain.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use edgewise_fqdn_store::{Address, MAX_CNAME_HOPS, Message, Rcode, Resolution, Unmapped};
use support::{Builder, Data, Section};

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

fn resolve(bytes: &[u8]) -> Result<(String, Vec<Address>), Unmapped> {
    let message = Message::parse(bytes).expect("valid message");
    let resolution = Resolution::new(message)?;
    Ok((
        resolution.question().to_string(),
        resolution.addresses().collect(),
    ))
}

fn addresses(bytes: &[u8]) -> Vec<(IpAddr, u32)> {
    resolve(bytes)
        .unwrap()
        .1
        .into_iter()
        .map(|address| (address.ip, address.ttl))
        .collect()
}

#[test]
fn direct_answers_map_to_the_question_in_any_case() {
    let mut builder = Builder::response("Api.EXAMPLE.com.", support::A);
    builder
        .answer("api.example.COM", 30, Data::A(v4(1)))
        .answer("API.example.com", 40, Data::A(v4(2)));
    let (question, _) = resolve(&builder.finish()).unwrap();
    assert_eq!(question, "api.example.com");
    assert_eq!(
        addresses(&builder.finish()),
        [(v4(1).into(), 30), (v4(2).into(), 40)]
    );
}

#[test]
fn a_cname_chain_in_reverse_order_maps_with_the_lowest_ttl() {
    // q -> c1 -> c2 -> ... -> c20, written last hop first.
    let hops = 20;
    let mut builder = Builder::response("q.example", support::A);
    builder.answer(&format!("c{hops}.example"), 500, Data::A(v4(9)));
    for hop in (1..=hops).rev() {
        let owner = if hop == 1 {
            "q.example".to_owned()
        } else {
            format!("c{}.example", hop - 1)
        };
        let ttl = if hop == 7 { 15 } else { 400 };
        builder.answer(&owner, ttl, Data::Cname(&format!("c{hop}.example")));
    }
    let bytes = builder.finish();
    assert_eq!(addresses(&bytes), [(v4(9).into(), 15)]);
    let resolution = Resolution::new(Message::parse(&bytes).unwrap()).unwrap();
    assert_eq!(resolution.aliases().count(), hops);
    assert!(!resolution.chain_cut());
}

#[test]
fn chains_longer_than_the_cap_are_cut() {
    let hops = MAX_CNAME_HOPS + 3;
    let mut builder = Builder::response("c0.example", support::A);
    for hop in 0..hops {
        builder.answer(
            &format!("c{hop}.example"),
            60,
            Data::Cname(&format!("c{}.example", hop + 1)),
        );
    }
    builder.answer(&format!("c{hops}.example"), 60, Data::A(v4(1)));
    builder.answer("c5.example", 60, Data::A(v4(2)));
    let bytes = builder.finish();
    let resolution = Resolution::new(Message::parse(&bytes).unwrap()).unwrap();
    assert!(resolution.chain_cut());
    assert_eq!(resolution.aliases().count(), MAX_CNAME_HOPS);
    let mapped: Vec<_> = resolution.addresses().map(|address| address.ip).collect();
    assert_eq!(
        mapped,
        [IpAddr::from(v4(2))],
        "only addresses reached within the cap"
    );
}

#[test]
fn cname_loops_end() {
    let mut builder = Builder::response("a.example", support::A);
    builder
        .answer("a.example", 60, Data::Cname("b.example"))
        .answer("b.example", 60, Data::Cname("a.example"))
        .answer("b.example", 60, Data::A(v4(3)));
    assert_eq!(addresses(&builder.finish()), [(v4(3).into(), 60)]);
}

#[test]
fn unrelated_answers_map_nothing() {
    // The poisoning shape: an answer for a name the client never asked for.
    let mut builder = Builder::response("bank.example", support::A);
    builder
        .answer("bank.example", 60, Data::A(v4(1)))
        .answer("evil.example", 60, Data::A(v4(66)))
        .answer("other.example", 60, Data::Cname("bank.example"));
    assert_eq!(addresses(&builder.finish()), [(v4(1).into(), 60)]);
    // Authority and additional records never map.
    let mut builder = Builder::response("bank.example", support::A);
    builder
        .record(Section::Authority, "bank.example", 60, Data::A(v4(7)))
        .record(Section::Additional, "bank.example", 60, Data::A(v4(8)));
    assert!(addresses(&builder.finish()).is_empty());
}

#[test]
fn other_classes_sinkholes_and_huge_ttls() {
    let mut builder = Builder::response("x.example", support::A);
    builder
        .record_with_class(Section::Answer, "x.example", 3, 60, Data::A(v4(1)))
        .answer("x.example", 60, Data::A(Ipv4Addr::UNSPECIFIED))
        .answer("x.example", 60, Data::Aaaa("::".parse().unwrap()))
        .answer("x.example", 0x8000_0000, Data::A(v4(2)))
        .answer("x.example", 0, Data::Aaaa("2001:db8::2".parse().unwrap()));
    assert_eq!(
        addresses(&builder.finish()),
        [(v4(2).into(), 0), ("2001:db8::2".parse().unwrap(), 0)],
        "CHAOS class and unspecified addresses skipped; TTL 2^31 counts as 0"
    );
}

#[test]
fn messages_that_map_nothing_say_why() {
    let mut query = Builder::new(1, 0x0100);
    query.question("x.example", support::A);
    assert_eq!(resolve(&query.finish()).unwrap_err(), Unmapped::Query);

    let mut nxdomain = Builder::new(1, support::RESPONSE | 3);
    nxdomain.question("x.example", support::A);
    assert_eq!(
        resolve(&nxdomain.finish()).unwrap_err(),
        Unmapped::Rcode(Rcode::NXDOMAIN)
    );

    let mut notify = Builder::new(1, support::RESPONSE | (4 << 11));
    notify.question("x.example", support::A);
    assert_eq!(resolve(&notify.finish()).unwrap_err(), Unmapped::Opcode(4));

    let mut two = Builder::new(1, support::RESPONSE);
    two.question("x.example", support::A)
        .question("y.example", support::A);
    assert_eq!(
        resolve(&two.finish()).unwrap_err(),
        Unmapped::QuestionCount(2)
    );
    assert_eq!(
        resolve(&Builder::new(1, support::RESPONSE).finish()).unwrap_err(),
        Unmapped::QuestionCount(0)
    );
}
