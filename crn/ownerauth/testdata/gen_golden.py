#!/usr/bin/python3
"""Writes golden.json: owner-auth headers made without go-aleph, with Python's
`cryptography` (P-256 ES256, ed25519, secp256k1) and a pure-Python keccak256,
following aleph-vm's authentication.py. Run from this directory:
    /usr/bin/python3 gen_golden.py > golden.json
ES256 and the secp256k1 signature are randomized, so each run writes different
signatures; the payloads and the SOL wallet signature are deterministic."""
import hashlib, json
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# --- keccak256 (Ethereum's, not SHA3-256) ---
def _rol(v, n):
    return ((v << n) | (v >> (64 - n))) & 0xFFFFFFFFFFFFFFFF

def _keccak_f(lanes):
    R = 1
    for _ in range(24):
        C = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
        D = [C[(x + 4) % 5] ^ _rol(C[(x + 1) % 5], 1) for x in range(5)]
        lanes = [[lanes[x][y] ^ D[x] for y in range(5)] for x in range(5)]
        (x, y) = (1, 0)
        current = lanes[x][y]
        for t in range(24):
            (x, y) = (y, (2 * x + 3 * y) % 5)
            (current, lanes[x][y]) = (lanes[x][y], _rol(current, ((t + 1) * (t + 2) // 2) % 64))
        for y in range(5):
            T = [lanes[x][y] for x in range(5)]
            for x in range(5):
                lanes[x][y] = T[x] ^ ((~T[(x + 1) % 5]) & T[(x + 2) % 5])
        for j in range(7):
            R = ((R << 1) ^ ((R >> 7) * 0x71)) % 256
            if R & 2:
                lanes[0][0] ^= 1 << ((1 << j) - 1)
    return lanes

def keccak256(data: bytes) -> bytes:
    rate = 136
    msg = bytearray(data) + b"\x01"
    while len(msg) % rate:
        msg += b"\x00"
    msg[-1] |= 0x80
    lanes = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            x, y = i % 5, i // 5
            lanes[x][y] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        lanes = _keccak_f(lanes)
    out = b"".join(lanes[i % 5][i // 5].to_bytes(8, "little") for i in range(25))
    return out[:32]

assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"

# --- secp256k1 point arithmetic, only to find the recovery id ---
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)

def _add(a, b):
    if a is None: return b
    if b is None: return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0: return None
    if a == b:
        l = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        l = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (l * l - a[0] - b[0]) % P
    return (x, (l * (a[0] - x) - a[1]) % P)

def _mul(k, pt):
    out = None
    while k:
        if k & 1: out = _add(out, pt)
        pt = _add(pt, pt)
        k >>= 1
    return out

def _recover(z, r, s, recid):
    x = r
    y = pow((x**3 + 7) % P, (P + 1) // 4, P)
    if y % 2 != recid: y = P - y
    rinv = pow(r, -1, N)
    return _add(_mul(s * rinv % N, (x, y)), _mul((-z * rinv) % N, G))

def eth_personal_sign(d: int, text: bytes):
    key = ec.derive_private_key(d, ec.SECP256K1())
    h = keccak256(b"\x19Ethereum Signed Message:\n" + str(len(text)).encode() + text)
    # Prehashed: cryptography signs the keccak digest as is.
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    der = key.sign(h, ec.ECDSA(Prehashed(hashes.SHA256())))
    r, s = decode_dss_signature(der)
    pub = key.public_key().public_numbers()
    z = int.from_bytes(h, "big")
    for recid in (0, 1):
        if _recover(z, r, s, recid) == (pub.x, pub.y):
            return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + recid])
    raise SystemExit("no recovery id")

def eth_address(d: int) -> str:
    pub = ec.derive_private_key(d, ec.SECP256K1()).public_key().public_numbers()
    return "0x" + keccak256(pub.x.to_bytes(32, "big") + pub.y.to_bytes(32, "big"))[12:].hex()

# web3.py's documented key → 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23
assert eth_address(0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318) == \
    "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"

def eip55(addr: str) -> str:
    h = keccak256(addr[2:].encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h[i], 16) >= 8 else c for i, c in enumerate(addr[2:]))

def b64url(b: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def b58(b: bytes) -> str:
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out

def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()

seed = lambda label: hashlib.sha256(label.encode()).digest()

DOMAIN = "crn.example.org"
VM = hashlib.sha256(b"golden vm").hexdigest()
NOW = "2025-01-01T12:00:00Z"

eph_d = int.from_bytes(seed("ownerauth golden ephemeral key"), "big")
eph = ec.derive_private_key(eph_d, ec.SECP256R1())
eph_pub = eph.public_key().public_numbers()
jwk = {"crv": "P-256", "kty": "EC", "x": b64url(eph_pub.x.to_bytes(32, "big")), "y": b64url(eph_pub.y.to_bytes(32, "big"))}

def es256(payload: bytes) -> str:
    r, s = decode_dss_signature(eph.sign(payload, ec.ECDSA(hashes.SHA256())))
    return (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()

cases = []
eth_d = int.from_bytes(seed("ownerauth golden eth wallet"), "big")
sol_key = ed25519.Ed25519PrivateKey.from_private_bytes(seed("ownerauth golden sol wallet"))
sol_addr = b58(sol_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
for chain, address, method, op in (("ETH", eip55(eth_address(eth_d)), "POST", "stop"), ("SOL", sol_addr, "GET", "logs")):
    payload = compact({"pubkey": jwk, "alg": "ECDSA", "domain": DOMAIN, "address": address,
                       "expires": "2025-01-01T13:00:00.000000Z", "chain": chain})
    if chain == "ETH":
        wallet_sig = "0x" + eth_personal_sign(eth_d, payload).hex()  # over the raw JSON bytes
    else:
        wallet_sig = sol_key.sign(payload.hex().encode()).hex()  # over the hex text
    path = f"/control/machine/{VM}/{op}"
    op_payload = compact({"time": "2025-01-01T12:00:00.000000Z", "method": method, "path": path, "domain": DOMAIN})
    cases.append({
        "chain": chain, "address": address, "domain": DOMAIN, "method": method, "path": path, "now": NOW,
        "ephemeral_key": eph_d.to_bytes(32, "big").hex(),
        "wallet_key": eth_d.to_bytes(32, "big").hex() if chain == "ETH" else seed("ownerauth golden sol wallet").hex(),
        "X-SignedPubKey": compact({"payload": payload.hex(), "signature": wallet_sig}).decode(),
        "X-SignedOperation": compact({"payload": op_payload.hex(), "signature": es256(op_payload)}).decode(),
    })
print(json.dumps(cases, indent=1))
