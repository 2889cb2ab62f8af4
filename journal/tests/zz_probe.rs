#[test]
fn probe() {
    // A string length prefix of 2^61 followed by nothing.
    let mut bytes = vec![0u8]; // time_ms varint 0
    bytes.push(253); // u64 varint marker
    bytes.extend_from_slice(&(1u64 << 61).to_le_bytes());
    let (hash, rec) = journal::codec::encode_record(0, &journal::Hash::ZERO, &bytes);
    let _ = hash;
    let raw = journal::codec::RawRecord::split(&rec).unwrap();
    println!("string: {:?}", raw.decode().err());
    let mut seqbytes = vec![0u8, 0u8, 18u8]; // time, empty trader, variant OrderSubmitted? 
    let _ = &mut seqbytes;
    let r: Result<Vec<String>, _> = journal::codec::decode_value(&[253, 0,0,0,0,0,0,0,32]);
    println!("vec: {:?}", r.err());
    let r: Result<String, _> = journal::codec::decode_value(&[253, 0,0,0,0,0,0,0,32]);
    println!("string2: {:?}", r.err());
    let r: Result<std::collections::BTreeMap<String,String>, _> = journal::codec::decode_value(&[253, 0,0,0,0,0,0,0,32]);
    println!("map: {:?}", r.err());
}
