"""EdDSA-Poseidon and BabyJubJub against the npm package circomlibjs 0.1.7 (node, from node_modules):
constants, public keys, signatures both ways, tampering refused on both sides, point packing, BLAKE-512
against blake-hash. Skips only when node_modules/circomlibjs is missing (CI runs `npm ci`)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from verifier import babyjubjub as B
from verifier import eddsa as E

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not (ROOT / "node_modules" / "circomlibjs").is_dir() or shutil.which("node") is None,
        reason="needs node and circomlibjs (npm ci)",
    ),
]

NODE_SCRIPT = r"""
import { buildEddsa } from "circomlibjs";
import createBlakeHash from "blake-hash";
import { readFileSync } from "fs";
const req = JSON.parse(readFileSync(0, "utf8"));
const eddsa = await buildEddsa();
const bj = eddsa.babyJub;
const F = bj.F;
const pt = (P) => [F.toObject(P[0]).toString(), F.toObject(P[1]).toString()];
const fromPt = (a) => [F.e(a[0]), F.e(a[1])];
const hex = (b) => Buffer.from(b).toString("hex");
const out = {
  version: JSON.parse(readFileSync("node_modules/circomlibjs/package.json", "utf8")).version,
  constants: {
    p: bj.p.toString(), A: F.toObject(bj.A).toString(), D: F.toObject(bj.D).toString(),
    Generator: pt(bj.Generator), Base8: pt(bj.Base8), order: bj.order.toString(), subOrder: bj.subOrder.toString(),
  },
  pub: req.pub.map((k) => pt(eddsa.prv2pub(Buffer.from(k, "hex")))),
  sign: req.sign.map(([k, m]) => {
    const s = eddsa.signPoseidon(Buffer.from(k, "hex"), F.e(m));
    return { R8: pt(s.R8), S: s.S.toString(), packed: hex(eddsa.packSignature(s)) };
  }),
  verify: req.verify.map(([m, R8, S, A]) => eddsa.verifyPoseidon(F.e(m), { R8: fromPt(R8), S: BigInt(S) }, fromPt(A))),
  pack: req.pack.map((P) => hex(bj.packPoint(fromPt(P)))),
  unpack: req.unpack.map((h) => { const P = bj.unpackPoint(Buffer.from(h, "hex")); return P === null ? null : pt(P); }),
  mul: req.mul.map(([P, e]) => pt(bj.mulPointEscalar(fromPt(P), BigInt(e)))),
  add: req.add.map(([P, Q]) => pt(bj.addPoint(fromPt(P), fromPt(Q)))),
  blake512: req.blake512.map((h) => createBlakeHash("blake512").update(Buffer.from(h, "hex")).digest("hex")),
};
console.log(JSON.stringify(out));
"""


def run_circomlibjs(**request: list) -> dict:
    full = {k: [] for k in ("pub", "sign", "verify", "pack", "unpack", "mul", "add", "blake512")}
    full.update(request)
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_SCRIPT],
        input=json.dumps(full), capture_output=True, text=True, timeout=120, check=True, cwd=ROOT,
    )
    out = json.loads(proc.stdout)
    assert out["version"] == "0.1.7"
    return out


def as_point(p: list[str]) -> tuple[int, int]:
    return (int(p[0]), int(p[1]))


def unpack_or_none(data: bytes) -> tuple[int, int] | None:
    try:
        return B.unpack_point(data)
    except B.InvalidPoint:
        return None


def wire(p: tuple[int, int]) -> list[str]:
    return [str(p[0]), str(p[1])]


RNG = random.Random(2026)
KEYS = [bytes(32), b"\xff" * 32, bytes(range(32))] + [RNG.randbytes(32) for _ in range(3)]
MSGS = [0, 1, B.P - 1] + [RNG.randrange(B.P) for _ in range(3)]


@pytest.fixture(scope="module")
def js() -> dict:
    points = [B.fast.mul(B.GENERATOR, RNG.randrange(B.ORDER)) for _ in range(4)] + [B.IDENTITY, (0, B.P - 1)]
    scalars = [0, 1, B.SUBORDER, RNG.randrange(1 << 256)]
    blake_inputs = [bytes((i * 7 + 3) & 255 for i in range(n)) for n in (0, 1, 32, 64, 110, 111, 112, 127, 128, 129, 239, 240, 256)]
    ours = [(m, E.sign(k, m), E.prv2pub(k)) for k, m in zip(KEYS, MSGS)]
    out = run_circomlibjs(
        pub=[k.hex() for k in KEYS],
        sign=[[k.hex(), str(m)] for k, m in zip(KEYS, MSGS)],
        verify=[[str(m), wire(s.R8), str(s.S), wire(a)] for m, s, a in ours] + [
            # tampered: message, S, R8, key (each in turn)
            [str((m + 1) % B.P), wire(s.R8), str(s.S), wire(a)] for m, s, a in ours[:2]
        ] + [[str(m), wire(s.R8), str((s.S + 1) % B.SUBORDER), wire(a)] for m, s, a in ours[:2]] + [
            [str(m), wire(B.fast.add(s.R8, B.BASE8)), str(s.S), wire(a)] for m, s, a in ours[:2]
        ] + [[str(m), wire(s.R8), str(s.S), wire(ours[-1][2])] for m, s, a in ours[:2]],
        pack=[wire(p) for p in points],
        unpack=[B.pack_point(p).hex() for p in points] + [(B.P - 1).to_bytes(32, "little").hex()],
        mul=[[wire(p), str(e)] for p in points[:2] for e in scalars],
        add=[[wire(p), wire(q)] for p, q in zip(points, points[1:])],
        blake512=[b.hex() for b in blake_inputs],
    )
    out["_points"], out["_scalars"], out["_ours"], out["_blake"] = points, scalars, ours, blake_inputs
    return out


def test_constants_match(js) -> None:
    c = js["constants"]
    assert int(c["p"]) == B.P
    assert (int(c["A"]), int(c["D"])) == (B.A, B.D)
    assert as_point(c["Generator"]) == B.GENERATOR
    assert as_point(c["Base8"]) == B.BASE8
    assert (int(c["order"]), int(c["subOrder"])) == (B.ORDER, B.SUBORDER)


def test_blake512_matches_blake_hash(js) -> None:
    assert js["blake512"] == [E.blake512(b).hex() for b in js["_blake"]]


@pytest.mark.parametrize("curve", list(B.IMPLEMENTATIONS.values()), ids=list(B.IMPLEMENTATIONS))
def test_public_keys_match(js, curve) -> None:
    keys = KEYS if curve is B.fast else KEYS[:2]
    assert [as_point(p) for p in js["pub"][: len(keys)]] == [E.prv2pub(k, curve) for k in keys]


def test_circomlibjs_signatures_verify_here_and_are_ours(js) -> None:
    for k, m, s in zip(KEYS, MSGS, js["sign"]):
        theirs = E.Signature(as_point(s["R8"]), int(s["S"]))
        a = E.prv2pub(k)
        assert E.verify(m, theirs, a)
        assert E.verify(m, theirs, a, B.reference) if k == KEYS[0] else True
        assert theirs == E.sign(k, m)  # signing is deterministic: the same signature
        assert bytes.fromhex(s["packed"]) == theirs.pack()
        assert E.Signature.unpack(bytes.fromhex(s["packed"])) == theirs


def test_circomlibjs_signatures_tampered_fail_here(js) -> None:
    s = js["sign"][3]
    m, a = MSGS[3], E.prv2pub(KEYS[3])
    theirs = E.Signature(as_point(s["R8"]), int(s["S"]))
    assert not E.verify((m + 1) % B.P, theirs, a)
    assert not E.verify(m, E.Signature(theirs.R8, (theirs.S + 1) % B.SUBORDER), a)
    assert not E.verify(m, E.Signature(B.fast.add(theirs.R8, B.BASE8), theirs.S), a)
    assert not E.verify(m, theirs, E.prv2pub(KEYS[4]))


def test_our_signatures_verify_there_and_tampered_fail(js) -> None:
    n = len(js["_ours"])
    assert js["verify"][:n] == [True] * n
    assert js["verify"][n:] == [False] * 8


def test_points_match(js) -> None:
    points, scalars = js["_points"], js["_scalars"]
    assert [bytes.fromhex(h) for h in js["pack"]] == [B.pack_point(p) for p in points]
    # null from circomlibjs exactly where we raise (x = 0: the identity, the point of order 2)
    packed = [B.pack_point(p) for p in points] + [(B.P - 1).to_bytes(32, "little")]
    assert [None if q is None else as_point(q) for q in js["unpack"]] == [unpack_or_none(b) for b in packed]
    assert js["unpack"][:4] != [None] * 4 and None in js["unpack"]
    muls = [(p, e) for p in points[:2] for e in scalars]
    for curve in B.IMPLEMENTATIONS.values():
        assert [as_point(q) for q in js["mul"]] == [curve.mul(p, e) for p, e in muls]
        assert [as_point(q) for q in js["add"]] == [curve.add(p, q) for p, q in zip(points, points[1:])]
