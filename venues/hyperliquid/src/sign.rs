//! L1-action signatures: how an `/exchange` action is hashed, signed and checked.
//!
//! An L1 action (order, cancel, cancelByCloid, updateLeverage, scheduleCancel, noop, ...)
//! is signed in two steps:
//!
//! 1. **The connection id.** `keccak256(msgpack(action) ‖ nonce ‖ vault ‖ expiresAfter?)`
//!    where `msgpack(action)` is the action as a msgpack map whose keys come in the
//!    documented order (our structs declare their fields in that order and
//!    `rmp_serde::to_vec_named` keeps it), `nonce` is 8 bytes big-endian, `vault` is the
//!    byte 0 or the byte 1 followed by the vault's 20 address bytes, and `expiresAfter`, when
//!    set, is the byte 0 followed by its 8 bytes big-endian ([`action_hash`]).
//! 2. **The phantom agent.** The EIP-712 typed data `Agent { source, connectionId }` with
//!    `source` "a" on mainnet and "b" on testnet, under the domain `{ name: "Exchange",
//!    version: "1", chainId: 1337, verifyingContract: 0x0 }`, signed with secp256k1 as an
//!    Ethereum signature `{ r, s, v }`, `v` 27 or 28 ([`agent_digest`], [`sign_l1_action`]).
//!
//! [`recover_l1_signer`] runs the same steps backwards: the address whose key made a
//! signature. The local Hyperliquid server uses it to authenticate requests the way the
//! venue does (a wrong hash recovers a *different* address, which is how a signing bug
//! shows at the real venue: "User or API Wallet 0x... does not exist.").
//!
//! The private key lives only inside a [`Wallet`]: no `Display`, a redacting `Debug`, and
//! errors that never quote it.

// Crates: k256's ECDSA (deterministic RFC 6979 signing that returns the recovery id, and
// recovery of the public key from a signature) and sha3's `Keccak256` are the two primitives
// this scheme needs; the EIP-712 encoding of the one fixed `Agent` struct is written out in
// `agent_digest`. Why not alloy: see the crate docs.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};

use crate::Network;

/// Why a key, an address or a signature was refused, or an action could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The private key text is not 32 bytes of hex, or not a valid secp256k1 scalar. The
    /// message never contains the text itself.
    #[error("the private key is not a valid secp256k1 key (expected 64 hex digits, optional 0x): {0}")]
    InvalidKey(&'static str),
    /// The environment variable that should hold the key is unset or not unicode.
    #[error("the environment variable {var} holds no private key")]
    MissingKey { var: String },
    /// An address that is not `0x` + 40 hex digits.
    #[error("invalid address {text:?}: {reason}")]
    InvalidAddress { text: String, reason: &'static str },
    /// A signature that cannot be a secp256k1 signature, or from which no key can be recovered.
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// The action does not encode as msgpack (a type this crate cannot express).
    #[error("the action does not encode as msgpack: {0}")]
    Encode(String),
}

/// `keccak256(data)`: Ethereum's hash (the original Keccak padding, not SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// A 20-byte Ethereum address. Shown and sent as `0x` + 40 lowercase hex digits (the docs:
/// "lowercase addresses before signing"); parsed from either case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Parses `0x` + 40 hex digits (either case; the `0x` is required, as the venue requires it).
    ///
    /// # Errors
    /// [`SignError::InvalidAddress`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Address, SignError> {
        let invalid = |reason| SignError::InvalidAddress { text: clip(text), reason };
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).ok_or(invalid("no 0x prefix"))?;
        if digits.len() != 40 {
            return Err(invalid("not 40 hex digits"));
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| invalid("not hex"))?;
        Ok(Address(bytes))
    }

    /// The address of a public key: the last 20 bytes of `keccak256(x ‖ y)`.
    pub fn of_key(key: &VerifyingKey) -> Address {
        let point = key.to_encoded_point(false);
        // An uncompressed SEC1 point is 0x04 ‖ x ‖ y.
        let hash = keccak256(&point.as_bytes()[1..]);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&hash[12..]);
        Address(bytes)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl std::str::FromStr for Address {
    type Err = SignError;
    fn from_str(text: &str) -> Result<Address, SignError> {
        Address::parse(text)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = String::deserialize(deserializer)?;
        Address::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A signing key (the API wallet's). It signs and tells its address; nothing else reads it.
/// `Debug` shows the address only, and there is no `Display` or serialization.
#[derive(Clone)]
pub struct Wallet {
    key: SigningKey,
    address: Address,
}

impl Wallet {
    /// A key from its hex text: 64 hex digits, with or without `0x`.
    ///
    /// # Errors
    /// [`SignError::InvalidKey`], which never quotes the text.
    pub fn from_hex(text: &str) -> Result<Wallet, SignError> {
        let digits = text.trim();
        let digits = digits.strip_prefix("0x").unwrap_or(digits);
        if digits.len() != 64 {
            return Err(SignError::InvalidKey("not 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| SignError::InvalidKey("not hex"))?;
        let key = SigningKey::from_slice(&bytes);
        // Wipe the stack copy; the SigningKey zeroizes its own on drop.
        bytes.fill(0);
        let key = key.map_err(|_| SignError::InvalidKey("zero or not below the curve order"))?;
        let address = Address::of_key(key.verifying_key());
        Ok(Wallet { key, address })
    }

    /// The key held by the environment variable `var` (the only place the API-wallet key
    /// should come from: never a file in the repository, never the journal).
    ///
    /// # Errors
    /// [`SignError::MissingKey`] naming the variable, or [`SignError::InvalidKey`].
    pub fn from_env(var: &str) -> Result<Wallet, SignError> {
        let text = std::env::var(var).map_err(|_| SignError::MissingKey { var: var.to_owned() })?;
        Wallet::from_hex(&text)
    }

    /// The address this key signs as (the API wallet's address, not the account's).
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest: deterministic (RFC 6979), low-s, `v` = 27 + recovery id.
    ///
    /// # Errors
    /// [`SignError::InvalidSignature`] in the (negligible) case the curve arithmetic fails.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature, SignError> {
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(digest)
            .map_err(|e| SignError::InvalidSignature(format!("signing failed: {e}")))?;
        let (r, s) = signature.split_bytes();
        Ok(Signature { r: r.into(), s: s.into(), v: 27 + recovery.to_byte() })
    }
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wallet {{ address: {}, key: <redacted> }}", self.address)
    }
}

/// An Ethereum signature as `/exchange` takes it: `{"r": "0x…", "s": "0x…", "v": 27|28}`.
///
/// `r` and `s` are sent as 64 hex digits; parsing also takes the shorter form without
/// leading zeros that the Python SDK sends (it prints them as integers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    pub r: [u8; 32],
    pub s: [u8; 32],
    pub v: u8,
}

impl Signature {
    /// Parses `r` and `s` from `0x` + 1 to 64 hex digits, and `v`.
    ///
    /// # Errors
    /// [`SignError::InvalidSignature`] naming the field.
    pub fn from_parts(r: &str, s: &str, v: u8) -> Result<Signature, SignError> {
        Ok(Signature { r: word(r, "r")?, s: word(s, "s")?, v })
    }

    /// `r` as sent: `0x` + 64 lowercase hex digits.
    pub fn r_hex(&self) -> String {
        format!("0x{}", hex::encode(self.r))
    }

    /// `s` as sent: `0x` + 64 lowercase hex digits.
    pub fn s_hex(&self) -> String {
        format!("0x{}", hex::encode(self.s))
    }

    /// The 65 bytes `r ‖ s ‖ v` (the form the Rust SDK prints).
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut bytes = [0u8; 65];
        bytes[..32].copy_from_slice(&self.r);
        bytes[32..64].copy_from_slice(&self.s);
        bytes[64] = self.v;
        bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature {{ r: {}, s: {}, v: {} }}", self.r_hex(), self.s_hex(), self.v)
    }
}

/// A 32-byte big-endian word from `0x` + 1..=64 hex digits (left-padded with zeros).
fn word(text: &str, field: &str) -> Result<[u8; 32], SignError> {
    let invalid = |reason: &str| SignError::InvalidSignature(format!("{field} {:?}: {reason}", clip(text)));
    let digits = text.strip_prefix("0x").ok_or_else(|| invalid("no 0x prefix"))?;
    if digits.is_empty() || digits.len() > 64 {
        return Err(invalid("not 1 to 64 hex digits"));
    }
    let padded = format!("{digits:0>64}");
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&padded, &mut bytes).map_err(|_| invalid("not hex"))?;
    Ok(bytes)
}

#[derive(Serialize, Deserialize)]
struct SignatureWire {
    r: String,
    s: String,
    v: u8,
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignatureWire { r: self.r_hex(), s: self.s_hex(), v: self.v }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Signature, D::Error> {
        let wire = SignatureWire::deserialize(deserializer)?;
        Signature::from_parts(&wire.r, &wire.s, wire.v).map_err(serde::de::Error::custom)
    }
}

/// The bytes hashed into the connection id: `msgpack(action) ‖ nonce ‖ vault ‖ expiresAfter?`.
///
/// # Errors
/// [`SignError::Encode`] if the action does not encode as msgpack.
pub fn action_bytes<A: Serialize + ?Sized>(
    action: &A,
    nonce: u64,
    vault: Option<&Address>,
    expires_after_ms: Option<u64>,
) -> Result<Vec<u8>, SignError> {
    let mut data = rmp_serde::to_vec_named(action).map_err(|e| SignError::Encode(e.to_string()))?;
    data.extend_from_slice(&nonce.to_be_bytes());
    match vault {
        None => data.push(0),
        Some(address) => {
            data.push(1);
            data.extend_from_slice(&address.0);
        }
    }
    if let Some(expires_after_ms) = expires_after_ms {
        data.push(0);
        data.extend_from_slice(&expires_after_ms.to_be_bytes());
    }
    Ok(data)
}

/// The connection id of an action: `keccak256` of [`action_bytes`].
///
/// # Errors
/// [`SignError::Encode`] if the action does not encode as msgpack.
pub fn action_hash<A: Serialize + ?Sized>(
    action: &A,
    nonce: u64,
    vault: Option<&Address>,
    expires_after_ms: Option<u64>,
) -> Result<[u8; 32], SignError> {
    Ok(keccak256(&action_bytes(action, nonce, vault, expires_after_ms)?))
}

/// The EIP-712 digest of the phantom agent `Agent { source, connectionId }` in the domain
/// `{ name: "Exchange", version: "1", chainId: 1337, verifyingContract: 0x0 }`:
/// `keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(agent))`.
///
/// Written out rather than taken from an EIP-712 library: the one type and the one domain are
/// fixed, and each step below is one line of the EIP-712 definition.
pub fn agent_digest(connection_id: &[u8; 32], network: Network) -> [u8; 32] {
    const DOMAIN_TYPE: &str = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
    const AGENT_TYPE: &str = "Agent(string source,bytes32 connectionId)";
    const CHAIN_ID: u64 = 1337;

    // hashStruct(domain) = keccak256(typeHash ‖ keccak(name) ‖ keccak(version) ‖ uint256(chainId) ‖ address),
    // every member encoded as a 32-byte word; the address 0x0 is 32 zero bytes.
    let mut chain_id = [0u8; 32];
    chain_id[24..].copy_from_slice(&CHAIN_ID.to_be_bytes());
    let mut domain = Vec::with_capacity(5 * 32);
    domain.extend_from_slice(&keccak256(DOMAIN_TYPE.as_bytes()));
    domain.extend_from_slice(&keccak256(b"Exchange"));
    domain.extend_from_slice(&keccak256(b"1"));
    domain.extend_from_slice(&chain_id);
    domain.extend_from_slice(&[0u8; 32]);
    let domain_separator = keccak256(&domain);

    // hashStruct(agent) = keccak256(typeHash ‖ keccak(source) ‖ connectionId): a string member
    // is encoded as its hash, a bytes32 member as itself.
    let mut agent = Vec::with_capacity(3 * 32);
    agent.extend_from_slice(&keccak256(AGENT_TYPE.as_bytes()));
    agent.extend_from_slice(&keccak256(network.source().as_bytes()));
    agent.extend_from_slice(connection_id);
    let agent_hash = keccak256(&agent);

    let mut message = Vec::with_capacity(2 + 2 * 32);
    message.extend_from_slice(&[0x19, 0x01]);
    message.extend_from_slice(&domain_separator);
    message.extend_from_slice(&agent_hash);
    keccak256(&message)
}

/// Signs an L1 action: the connection id, then the phantom agent of `network`.
///
/// # Errors
/// [`SignError::Encode`] if the action does not encode as msgpack.
pub fn sign_l1_action<A: Serialize + ?Sized>(
    wallet: &Wallet,
    action: &A,
    nonce: u64,
    vault: Option<&Address>,
    expires_after_ms: Option<u64>,
    network: Network,
) -> Result<Signature, SignError> {
    let connection_id = action_hash(action, nonce, vault, expires_after_ms)?;
    wallet.sign_digest(&agent_digest(&connection_id, network))
}

/// The address whose key signed `digest`.
///
/// # Errors
/// [`SignError::InvalidSignature`] when `v` is not 27 or 28, `r` or `s` is zero or not
/// below the curve order, `s` is in the high half (Ethereum accepts low-s only), or no
/// public key matches.
pub fn recover_digest(digest: &[u8; 32], signature: &Signature) -> Result<Address, SignError> {
    let recovery = match signature.v {
        27 | 28 => RecoveryId::from_byte(signature.v - 27),
        _ => None,
    }
    .ok_or_else(|| SignError::InvalidSignature(format!("v is {}, not 27 or 28", signature.v)))?;
    let ecdsa = EcdsaSignature::from_scalars(signature.r, signature.s)
        .map_err(|_| SignError::InvalidSignature("r or s is zero or not below the curve order".into()))?;
    if ecdsa.normalize_s().is_some() {
        return Err(SignError::InvalidSignature("s is in the high half (not a canonical signature)".into()));
    }
    let key = VerifyingKey::recover_from_prehash(digest, &ecdsa, recovery)
        .map_err(|_| SignError::InvalidSignature("no public key recovers from it".into()))?;
    Ok(Address::of_key(&key))
}

/// The address that signed an L1 action (the agent or account the venue would act for).
///
/// # Errors
/// [`SignError::Encode`] if the action does not encode, [`SignError::InvalidSignature`] as
/// [`recover_digest`].
pub fn recover_l1_signer<A: Serialize + ?Sized>(
    action: &A,
    nonce: u64,
    vault: Option<&Address>,
    expires_after_ms: Option<u64>,
    network: Network,
    signature: &Signature,
) -> Result<Address, SignError> {
    let connection_id = action_hash(action, nonce, vault, expires_after_ms)?;
    recover_digest(&agent_digest(&connection_id, network), signature)
}

/// At most 80 characters of an input, for an error message.
fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    //! Every expected value here is published by someone else: the Hyperliquid Python SDK's
    //! `tests/signing_test.py` (key `0x0123…0123`), the Rust SDK's `exchange_client.rs` tests
    //! (key `e908…688e`, signatures printed as `r ‖ s ‖ v`), and ethers.js's signing tests
    //! (the address of `0x0123…0123` and its "hello world" signature). None was computed with
    //! this crate.

    use super::*;
    use crate::types::{
        Action, Cancel, CancelAction, Grouping, Limit, OrderAction, OrderType, OrderWire, ScheduleCancel, Tif, Tpsl,
        Trigger,
    };
    use crate::wire::parse_cloid;

    const PY_KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
    const RS_KEY: &str = "e908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e";

    fn py_wallet() -> Wallet {
        Wallet::from_hex(PY_KEY).unwrap()
    }

    fn rs_wallet() -> Wallet {
        Wallet::from_hex(RS_KEY).unwrap()
    }

    /// The Python SDK's `{"type": "dummy", "num": float_to_int_for_hashing(1000)}`.
    #[derive(Serialize)]
    struct Dummy {
        #[serde(rename = "type")]
        kind: &'static str,
        num: u64,
    }

    const DUMMY: Dummy = Dummy { kind: "dummy", num: 100_000_000_000 };

    /// Compares with a published `{r, s, v}`; the Python SDK prints r and s as integers, so
    /// some have fewer than 64 digits.
    #[track_caller]
    fn assert_signature(signature: Signature, r: &str, s: &str, v: u8) {
        assert_eq!(signature, Signature::from_parts(r, s, v).unwrap());
    }

    /// Compares with a published `r ‖ s ‖ v` (the Rust SDK's `Signature::to_string`).
    #[track_caller]
    fn assert_signature_bytes(signature: Signature, expected: &str) {
        assert_eq!(hex::encode(signature.to_bytes()), expected);
    }

    /// Signs for both networks, checks the published values, and checks that recovery names
    /// the signer.
    #[track_caller]
    fn check_py<A: Serialize>(
        action: &A,
        vault: Option<&Address>,
        mainnet: (&str, &str, u8),
        testnet: (&str, &str, u8),
    ) {
        let wallet = py_wallet();
        for (network, (r, s, v)) in [(Network::Mainnet, mainnet), (Network::Testnet, testnet)] {
            let signature = sign_l1_action(&wallet, action, 0, vault, None, network).unwrap();
            assert_signature(signature, r, s, v);
            assert_eq!(recover_l1_signer(action, 0, vault, None, network, &signature), Ok(wallet.address()));
        }
    }

    fn order(asset: u32, price: &str, size: &str, order_type: OrderType, cloid: Option<&str>) -> Action {
        Action::Order(OrderAction {
            orders: vec![OrderWire {
                asset,
                is_buy: true,
                limit_px: price.into(),
                sz: size.into(),
                reduce_only: false,
                order_type,
                cloid: cloid.map(|text| parse_cloid(text).unwrap()),
            }],
            grouping: Grouping::Na,
            builder: None,
        })
    }

    fn limit(tif: Tif) -> OrderType {
        OrderType::Limit(Limit { tif })
    }

    #[test]
    fn keccak_and_the_address_of_a_key_match_ethereum() {
        assert_eq!(hex::encode(keccak256(b"")), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
        assert_eq!(py_wallet().address(), Address::parse("0x14791697260E4c9A71f18484C9f997B308e59325").unwrap());
        assert_eq!(py_wallet().address().to_string(), "0x14791697260e4c9a71f18484c9f997b308e59325");
    }

    #[test]
    fn signs_and_recovers_the_ethers_hello_world_vector() {
        // EIP-191 hash of "hello world" and ethers.js's signature of it with the same key.
        let digest: [u8; 32] = hex::decode("d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68")
            .unwrap()
            .try_into()
            .unwrap();
        let expected = "ddd0a7290af9526056b4e35a077b9a11b513aa0028ec6c9880948544508f3c63\
                        265e99e47ad31bb2cab9646c504576b3abc6939a1710afc08cbf3034d73214b81c";
        let signature = py_wallet().sign_digest(&digest).unwrap();
        assert_signature_bytes(signature, expected);
        assert_eq!(recover_digest(&digest, &signature), Ok(py_wallet().address()));
    }

    #[test]
    fn phantom_agent_connection_id_matches_production() {
        // test_phantom_agent_creation_matches_production: ETH (asset 4) buy 0.0147 at 1670.1 Ioc.
        let action = order(4, "1670.1", "0.0147", limit(Tif::Ioc), None);
        let hash = action_hash(&action, 1_677_777_606_040, None, None).unwrap();
        assert_eq!(hex::encode(hash), "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908");
    }

    #[test]
    fn l1_action_signing_matches() {
        check_py(
            &DUMMY,
            None,
            (
                "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
                "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
                27,
            ),
            (
                "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
                "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613",
                28,
            ),
        );
    }

    #[test]
    fn l1_action_signing_order_matches() {
        check_py(
            &order(1, "100", "100", limit(Tif::Gtc), None),
            None,
            (
                "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
                "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e",
                28,
            ),
            (
                "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
                "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5",
                27,
            ),
        );
    }

    #[test]
    fn l1_action_signing_order_with_cloid_matches() {
        check_py(
            &order(1, "100", "100", limit(Tif::Gtc), Some("0x00000000000000000000000000000001")),
            None,
            (
                "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
                "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da",
                27,
            ),
            (
                "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
                "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988",
                28,
            ),
        );
    }

    #[test]
    fn l1_action_signing_matches_with_vault() {
        let vault = Address::parse("0x1719884eb866cb12b2287399b15f7db5e7d775ea").unwrap();
        check_py(
            &DUMMY,
            Some(&vault),
            (
                "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
                "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c",
                28,
            ),
            (
                "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
                "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60",
                27,
            ),
        );
    }

    #[test]
    fn l1_action_signing_tpsl_order_matches() {
        let stop = OrderType::Trigger(Trigger { is_market: true, trigger_px: "103".into(), tpsl: Tpsl::Sl });
        check_py(
            &order(1, "100", "100", stop, None),
            None,
            (
                "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
                "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405",
                27,
            ),
            (
                "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
                "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac",
                28,
            ),
        );
    }

    #[test]
    fn create_sub_account_action_matches() {
        #[derive(Serialize)]
        struct CreateSubAccount {
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'static str,
        }
        check_py(
            &CreateSubAccount { kind: "createSubAccount", name: "example" },
            None,
            (
                "0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
                "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423",
                27,
            ),
            (
                "0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
                "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584",
                28,
            ),
        );
    }

    #[test]
    fn sub_account_transfer_action_matches() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SubAccountTransfer {
            #[serde(rename = "type")]
            kind: &'static str,
            sub_account_user: &'static str,
            is_deposit: bool,
            usd: u64,
        }
        let action = SubAccountTransfer {
            kind: "subAccountTransfer",
            sub_account_user: "0x1d9470d4b963f552e6f671a81619d395877bf409",
            is_deposit: true,
            usd: 10,
        };
        check_py(
            &action,
            None,
            (
                "0x43592d7c6c7d816ece2e206f174be61249d651944932b13343f4d13f306ae602",
                "0x71a926cb5c9a7c01c3359ec4c4c34c16ff8107d610994d4de0e6430e5cc0f4c9",
                28,
            ),
            (
                "0xe26574013395ad55ee2f4e0575310f003c5bb3351b5425482e2969fa51543927",
                "0xefb08999196366871f919fd0e138b3a7f30ee33e678df7cfaf203e25f0a4278",
                28,
            ),
        );
    }

    #[test]
    fn schedule_cancel_action_matches() {
        check_py(
            &Action::ScheduleCancel(ScheduleCancel { time: None }),
            None,
            (
                "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
                "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0",
                27,
            ),
            (
                "0xc75bb195c3f6a4e06b7d395acc20bbb224f6d23ccff7c6a26d327304e6efaeed",
                "0x342f8ede109a29f2c0723bd5efb9e9100e3bbb493f8fb5164ee3d385908233df",
                28,
            ),
        );
        check_py(
            &Action::ScheduleCancel(ScheduleCancel { time: Some(123_456_789) }),
            None,
            (
                "0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
                "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b",
                28,
            ),
            (
                "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
                "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678",
                27,
            ),
        );
    }

    /// The Rust SDK's vectors: nonce 1583838, no vault, signatures as `r ‖ s ‖ v`.
    #[track_caller]
    fn check_rs(action: &Action, mainnet: &str, testnet: &str) {
        let wallet = rs_wallet();
        for (network, expected) in [(Network::Mainnet, mainnet), (Network::Testnet, testnet)] {
            let signature = sign_l1_action(&wallet, action, 1_583_838, None, None, network).unwrap();
            assert_signature_bytes(signature, expected);
            assert_eq!(recover_l1_signer(action, 1_583_838, None, None, network, &signature), Ok(wallet.address()));
        }
    }

    #[test]
    fn rust_sdk_limit_order_action_hashing() {
        // The Rust SDK sends "2000.0" as given: the hash is over the exact string.
        check_rs(
            &order(1, "2000.0", "3.5", limit(Tif::Ioc), None),
            "77957e58e70f43b6b68581f2dc42011fc384538a2e5b7bf42d5b936f19fbb67360721a8598727230f67080efee48c812a6a4442013fd3b0eed509171bef9f23f1c",
            "cd0925372ff1ed499e54883e9a6205ecfadec748f80ec463fe2f84f1209648776377961965cb7b12414186b1ea291e95fd512722427efcbcfb3b0b2bcd4d79d01c",
        );
    }

    #[test]
    fn rust_sdk_limit_order_with_cloid_action_hashing() {
        // The cloid of UUID 1e60610f-0b3d-4205-97c8-8c1fed2ad5ee.
        check_rs(
            &order(1, "2000.0", "3.5", limit(Tif::Ioc), Some("0x1e60610f0b3d420597c88c1fed2ad5ee")),
            "d3e894092eb27098077145714630a77bbe3836120ee29df7d935d8510b03a08f456de5ec1be82aa65fc6ecda9ef928b0445e212517a98858cfaa251c4cd7552b1c",
            "3768349dbb22a7fd770fc9fc50c7b5124a7da342ea579b309f58002ceae49b4357badc7909770919c45d850aabb08474ff2b7b3204ae5b66d9f7375582981f111c",
        );
    }

    #[test]
    fn rust_sdk_tpsl_order_action_hashing() {
        for (tpsl, mainnet, testnet) in [
            (
                Tpsl::Tp,
                "b91e5011dff15e4b4a40753730bda44972132e7b75641f3cac58b66159534a170d422ee1ac3c7a7a2e11e298108a2d6b8da8612caceaeeb3e571de3b2dfda9e41b",
                "6df38b609904d0d4439884756b8f366f22b3a081801dbdd23f279094a2299fac6424cb0cdc48c3706aeaa368f81959e91059205403d3afd23a55983f710aee871b",
            ),
            (
                Tpsl::Sl,
                "8456d2ace666fce1bee1084b00e9620fb20e810368841e9d4dd80eb29014611a0843416e51b1529c22dd2fc28f7ff8f6443875635c72011f60b62cbb8ce90e2d1c",
                "eb5bdb52297c1d19da45458758bd569dcb24c07e5c7bd52cf76600fd92fdd8213e661e21899c985421ec018a9ee7f3790e7b7d723a9932b7b5adcd7def5354601c",
            ),
        ] {
            let trigger = OrderType::Trigger(Trigger { is_market: true, trigger_px: "2000.0".into(), tpsl });
            check_rs(&order(1, "2000.0", "3.5", trigger, None), mainnet, testnet);
        }
    }

    #[test]
    fn rust_sdk_cancel_action_hashing() {
        check_rs(
            &Action::Cancel(CancelAction { cancels: vec![Cancel { asset: 1, oid: 82_382 }] }),
            "02f76cc5b16e0810152fa0e14e7b219f49c361e3325f771544c6f54e157bf9fa17ed0afc11a98596be85d5cd9f86600aad515337318f7ab346e5ccc1b03425d51b",
            "6ffebadfd48067663390962539fbde76cfa36f53be65abe2ab72c9db6d0db44457720db9d7c4860f142a484f070c84eb4b9694c3a617c83f0d698a27e55fd5e01c",
        );
    }

    #[test]
    fn expires_after_appends_a_zero_byte_and_eight_big_endian_bytes() {
        // No published vector has expiresAfter: check the documented layout of the bytes, and
        // that it changes the hash and so who the signature recovers to.
        let action = Action::Noop;
        let without = action_bytes(&action, 7, None, None).unwrap();
        let with = action_bytes(&action, 7, None, Some(0x0102_0304_0506_0708)).unwrap();
        assert_eq!(&with[..without.len()], &without[..]);
        assert_eq!(&with[without.len()..], &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        // msgpack {"type": "noop"} = fixmap(1), fixstr "type", fixstr "noop"; then the nonce; then
        // the no-vault byte.
        let mut expected = vec![0x81, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'n', b'o', b'o', b'p'];
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 0]);
        assert_eq!(without, expected);

        let wallet = py_wallet();
        let signature = sign_l1_action(&wallet, &action, 7, None, Some(99), Network::Mainnet).unwrap();
        assert_eq!(recover_l1_signer(&action, 7, None, Some(99), Network::Mainnet, &signature), Ok(wallet.address()));
        assert_ne!(recover_l1_signer(&action, 7, None, None, Network::Mainnet, &signature), Ok(wallet.address()));
    }

    #[test]
    fn a_signature_recovers_to_another_address_under_another_hash() {
        // How a signing bug shows at the venue: a different nonce, network or vault recovers a
        // different, unknown address.
        let wallet = py_wallet();
        let action = order(1, "100", "100", limit(Tif::Gtc), None);
        let signature = sign_l1_action(&wallet, &action, 0, None, None, Network::Mainnet).unwrap();
        let other = |nonce, network| recover_l1_signer(&action, nonce, None, None, network, &signature);
        assert_ne!(other(1, Network::Mainnet), Ok(wallet.address()));
        assert_ne!(other(0, Network::Testnet), Ok(wallet.address()));
        let vault = Address([0x17; 20]);
        assert_ne!(
            recover_l1_signer(&action, 0, Some(&vault), None, Network::Mainnet, &signature),
            Ok(wallet.address())
        );
    }

    #[test]
    fn malformed_signatures_are_refused_with_the_reason() {
        let digest = [7u8; 32];
        let good = py_wallet().sign_digest(&digest).unwrap();
        let refused = |signature: Signature| match recover_digest(&digest, &signature) {
            Err(SignError::InvalidSignature(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(refused(Signature { v: 29, ..good }), "v is 29, not 27 or 28");
        assert_eq!(refused(Signature { r: [0; 32], ..good }), "r or s is zero or not below the curve order");
        assert_eq!(refused(Signature { s: [0xff; 32], ..good }), "r or s is zero or not below the curve order");
        // s' = n − s is the same signature's high-s twin: refused as not canonical.
        let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
        let mut high = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut byte = i16::from(n[i]) - i16::from(good.s[i]) - borrow;
            borrow = i16::from(byte < 0);
            if byte < 0 {
                byte += 256;
            }
            high[i] = byte as u8;
        }
        assert_eq!(refused(Signature { s: high, ..good }), "s is in the high half (not a canonical signature)");

        assert!(matches!(Signature::from_parts("0x", "0x1", 27), Err(SignError::InvalidSignature(_))));
        assert!(matches!(Signature::from_parts("12", "0x1", 27), Err(SignError::InvalidSignature(_))));
        assert!(Signature::from_parts(&format!("0x{}", "1".repeat(65)), "0x1", 27).is_err());
    }

    #[test]
    fn the_key_never_shows() {
        let wallet = py_wallet();
        let debug = format!("{wallet:?}");
        assert_eq!(debug, "Wallet { address: 0x14791697260e4c9a71f18484c9f997b308e59325, key: <redacted> }");
        assert!(!debug.contains("0123456789"));
        // Errors about keys never quote them.
        let almost = format!("{}zz", &PY_KEY[..64]);
        let error = Wallet::from_hex(&almost).unwrap_err().to_string();
        assert!(!error.contains("01234567"), "{error}");
        assert_eq!(
            Wallet::from_hex(&"0".repeat(64)).unwrap_err(),
            SignError::InvalidKey("zero or not below the curve order")
        );
        assert_eq!(Wallet::from_hex("0x12").unwrap_err(), SignError::InvalidKey("not 64 hex digits"));
        // The key's one source: the environment.
        let var = format!("QUANTFOLD_TEST_HL_KEY_{}", std::process::id());
        std::env::set_var(&var, format!("{PY_KEY}\n"));
        assert_eq!(Wallet::from_env(&var).map(|wallet| wallet.address()), Ok(wallet.address()));
        std::env::remove_var(&var);
        assert_eq!(
            Wallet::from_env("QUANTFOLD_TEST_SURELY_UNSET_HL_KEY").unwrap_err(),
            SignError::MissingKey { var: "QUANTFOLD_TEST_SURELY_UNSET_HL_KEY".into() }
        );
    }

    #[test]
    fn signatures_travel_as_json_r_s_v() {
        let signature = Signature::from_parts(
            "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
            "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
            27,
        )
        .unwrap();
        let json = serde_json::to_value(signature).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "r": "0x053749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
                "s": "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
                "v": 27
            })
        );
        assert_eq!(serde_json::from_value::<Signature>(json).unwrap(), signature);
    }

    #[test]
    fn addresses_parse_either_case_and_print_lowercase() {
        let address = Address::parse("0x1719884EB866cb12b2287399b15f7db5e7d775ea").unwrap();
        assert_eq!(address.to_string(), "0x1719884eb866cb12b2287399b15f7db5e7d775ea");
        assert_eq!(
            Address::parse("1719884eb866cb12b2287399b15f7db5e7d775ea"),
            Err(SignError::InvalidAddress {
                text: "1719884eb866cb12b2287399b15f7db5e7d775ea".into(),
                reason: "no 0x prefix"
            })
        );
        assert!(Address::parse("0x1719").is_err());
        assert!(Address::parse("0x1719884eb866cb12b2287399b15f7db5e7d775eg").is_err());
    }
}
