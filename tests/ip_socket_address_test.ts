// Address parsing, formatting, shape checks and the WIT's address rules.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  checkIpSocketAddress,
  formatIpv6,
  fromHostAddress,
  type IpSocketAddress,
  parseIpv4,
  parseIpv6,
  toHostAddress,
  validateSocketAddress,
} from "../core/ip_socket_address.ts";
import { NetworkError } from "../core/errors.ts";
import { outcome, v4, v6 } from "./_memory_env.ts";

describe("parseIpv4()", () => {
  it("parseIpv4() parses dotted quads", () => {
    assert.deepEqual(parseIpv4("127.0.0.1"), [127, 0, 0, 1]);
    assert.deepEqual(parseIpv4("0.0.0.0"), [0, 0, 0, 0]);
    assert.deepEqual(parseIpv4("255.255.255.255"), [255, 255, 255, 255]);
    assert.deepEqual(parseIpv4("10.20.30.40"), [10, 20, 30, 40]);
  });

  it("parseIpv4() rejects anything that is not four decimal octets", () => {
    for (
      const bad of [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.-4",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1..3.4",
        "a.b.c.d",
        "0x7f.0.0.1",
        "1.2.3.1000",
        "::1",
        "1.2.3.4/8",
      ]
    ) {
      assert.equal(parseIpv4(bad), undefined, JSON.stringify(bad));
    }
  });

  it("parseIpv4() rejects octets with leading zeros, which some parsers read as octal", () => {
    for (const bad of ["01.2.3.4", "1.2.3.04", "127.0.0.001", "00.0.0.0"]) {
      assert.equal(parseIpv4(bad), undefined, bad);
    }
  });
});

describe("parseIpv6()", () => {
  const valid: Array<[string, number[]]> = [
    ["::", [0, 0, 0, 0, 0, 0, 0, 0]],
    ["::1", [0, 0, 0, 0, 0, 0, 0, 1]],
    ["1::", [1, 0, 0, 0, 0, 0, 0, 0]],
    ["fe80::1", [0xfe80, 0, 0, 0, 0, 0, 0, 1]],
    ["FE80::ABCD", [0xfe80, 0, 0, 0, 0, 0, 0, 0xabcd]],
    ["1:2:3:4:5:6:7:8", [1, 2, 3, 4, 5, 6, 7, 8]],
    ["1:2:3:4:5:6:7::", [1, 2, 3, 4, 5, 6, 7, 0]],
    ["::2:3:4:5:6:7:8", [0, 2, 3, 4, 5, 6, 7, 8]],
    ["2001:db8::ff00:42:8329", [0x2001, 0xdb8, 0, 0, 0, 0xff00, 0x42, 0x8329]],
    ["0001:0002::0003", [1, 2, 0, 0, 0, 0, 0, 3]],
    ["::ffff:127.0.0.1", [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]],
    ["::1.2.3.4", [0, 0, 0, 0, 0, 0, 0x0102, 0x0304]],
    ["1:2:3:4:5:6:1.2.3.4", [1, 2, 3, 4, 5, 6, 0x0102, 0x0304]],
    ["fe80::1%eth0", [0xfe80, 0, 0, 0, 0, 0, 0, 1]],
    ["[::1]", [0, 0, 0, 0, 0, 0, 0, 1]],
  ];
  for (const [text, groups] of valid) {
    it(`parseIpv6() parses ${text}`, () => {
      assert.deepEqual(parseIpv6(text), groups);
    });
  }

  it("parseIpv6() rejects malformed text", () => {
    for (
      const bad of [
        "",
        ":",
        ":::",
        ":1",
        "1:",
        "1::2::3",
        "12345::",
        "g::1",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7:8::",
        "::1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:1.2.3.4",
        "::ffff:1.2.3",
        "::ffff:256.1.1.1",
        "1.2.3.4",
        "1.2.3.4::",
      ]
    ) {
      assert.equal(parseIpv6(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe("formatIpv6()", () => {
  const cases: Array<[number[], string]> = [
    [[0, 0, 0, 0, 0, 0, 0, 0], "::"],
    [[0, 0, 0, 0, 0, 0, 0, 1], "::1"],
    [[1, 0, 0, 0, 0, 0, 0, 0], "1::"],
    [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"],
    [[0xfe80, 0, 0, 0, 0xabcd, 0, 0, 1], "fe80::abcd:0:0:1"],
    [[1, 0, 0, 1, 0, 0, 0, 1], "1:0:0:1::1"],
    [[1, 0, 0, 0, 1, 0, 0, 0], "1::1:0:0:0"],
    [[1, 0, 1, 1, 1, 1, 1, 1], "1:0:1:1:1:1:1:1"],
    [[0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ];
  for (const [groups, text] of cases) {
    it(`formatIpv6() writes ${text} (RFC 5952: lowercase, longest zero run, first on ties, no single-group ::)`, () => {
      assert.equal(formatIpv6(groups), text);
    });
  }

  it("formatIpv6() output parses back to the same groups", () => {
    let x = 7;
    for (let i = 0; i < 500; i++) {
      const groups: number[] = [];
      for (let g = 0; g < 8; g++) {
        x = (x * 1103515245 + 12345) >>> 0;
        // Many zero groups, so that compression is exercised.
        groups.push((x >>> 16) % 3 === 0 ? 0 : x & 0xffff);
      }
      assert.deepEqual(parseIpv6(formatIpv6(groups)), groups);
    }
  });
});

describe("checkIpSocketAddress()", () => {
  it("checkIpSocketAddress() accepts well-formed IPv4 and IPv6 addresses", () => {
    const a = v4(127, 0, 0, 1, 80);
    assert.equal(checkIpSocketAddress(a, "a"), a);
    const b = v6([0, 0, 0, 0, 0, 0, 0, 1], 65535);
    assert.equal(checkIpSocketAddress(b, "b"), b);
    const c = { tag: "ipv6", val: { port: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], flowInfo: 0xffffffff, scopeId: 0xffffffff } };
    assert.equal(checkIpSocketAddress(c, "c"), c);
    const d = { tag: "ipv4", val: { port: 1, address: new Uint8Array([10, 0, 0, 1]) } };
    assert.equal(checkIpSocketAddress(d, "d"), d, "typed arrays are tuples too");
  });

  it("checkIpSocketAddress() throws TypeError for malformed shapes and out-of-range fields", () => {
    const bad: unknown[] = [
      null,
      undefined,
      "127.0.0.1:80",
      {},
      { tag: "ipv4" },
      { tag: "ipv4", val: null },
      { tag: "ipv5", val: { port: 80, address: [127, 0, 0, 1] } },
      { tag: "ipv4", val: { port: 70000, address: [127, 0, 0, 1] } },
      { tag: "ipv4", val: { port: -1, address: [127, 0, 0, 1] } },
      { tag: "ipv4", val: { port: 1.5, address: [127, 0, 0, 1] } },
      { tag: "ipv4", val: { port: 80n, address: [127, 0, 0, 1] } },
      { tag: "ipv4", val: { port: 80, address: [127, 0, 1] } },
      { tag: "ipv4", val: { port: 80, address: [127, 0, 0, 1, 1] } },
      { tag: "ipv4", val: { port: 80, address: [127, 0, 0, 256] } },
      { tag: "ipv4", val: { port: 80, address: [127, 0, 0, "1"] } },
      { tag: "ipv4", val: { port: 80, address: "127.0.0.1" } },
      { tag: "ipv6", val: { port: 80, address: [0, 0, 0, 0, 0, 0, 0, 0x10000], flowInfo: 0, scopeId: 0 } },
      { tag: "ipv6", val: { port: 80, address: [0, 0, 0, 0, 0, 0, 1], flowInfo: 0, scopeId: 0 } },
      { tag: "ipv6", val: { port: 80, address: [0, 0, 0, 0, 0, 0, 0, 1], flowInfo: 2 ** 32, scopeId: 0 } },
      { tag: "ipv6", val: { port: 80, address: [0, 0, 0, 0, 0, 0, 0, 1], flowInfo: 0, scopeId: -1 } },
      { tag: "ipv6", val: { port: 80, address: [127, 0, 0, 1] } },
    ];
    for (const value of bad) {
      assert.throws(() => checkIpSocketAddress(value, "addr"), TypeError, JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v));
    }
  });
});

describe("validateSocketAddress()", () => {
  const invalidBoth: Array<[string, IpSocketAddress, "ipv4" | "ipv6"]> = [
    ["an IPv6 address for an IPv4 socket", v6([0, 0, 0, 0, 0, 0, 0, 1], 80), "ipv4"],
    ["an IPv4 address for an IPv6 socket", v4(127, 0, 0, 1, 80), "ipv6"],
    ["IPv4 multicast 224.0.0.1", v4(224, 0, 0, 1, 80), "ipv4"],
    ["IPv4 multicast 239.1.2.3", v4(239, 1, 2, 3, 80), "ipv4"],
    ["IPv4 broadcast 255.255.255.255", v4(255, 255, 255, 255, 80), "ipv4"],
    ["IPv6 multicast ff02::1", v6([0xff02, 0, 0, 0, 0, 0, 0, 1], 80), "ipv6"],
    ["IPv6 multicast ff00::", v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 80), "ipv6"],
    ["IPv4-mapped ::ffff:127.0.0.1", v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], 80), "ipv6"],
    ["IPv4-mapped ::ffff:0.0.0.0", v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 80), "ipv6"],
  ];
  for (const [what, addr, family] of invalidBoth) {
    it(`validateSocketAddress() answers invalid-argument for ${what}, for bind and connect`, () => {
      for (const use of ["bind", "connect"] as const) {
        assert.throws(
          () => validateSocketAddress(addr, family, use),
          (e) => e instanceof NetworkError && e.payload === "invalid-argument",
          use,
        );
      }
    });
  }

  const connectOnly: Array<[string, IpSocketAddress]> = [
    ["the unspecified address 0.0.0.0", v4(0, 0, 0, 0, 80)],
    ["the unspecified address ::", v6([0, 0, 0, 0, 0, 0, 0, 0], 80)],
    ["port 0 on 127.0.0.1", v4(127, 0, 0, 1, 0)],
    ["port 0 on ::1", v6([0, 0, 0, 0, 0, 0, 0, 1], 0)],
  ];
  for (const [what, addr] of connectOnly) {
    it(`validateSocketAddress() answers invalid-argument for ${what} on connect only`, () => {
      assert.equal(outcome(() => validateSocketAddress(addr, addr.tag, "bind")), "ok");
      assert.equal(outcome(() => validateSocketAddress(addr, addr.tag, "connect")), "invalid-argument");
    });
  }

  it("validateSocketAddress() accepts unicast addresses of the socket's family", () => {
    const ok: IpSocketAddress[] = [
      v4(127, 0, 0, 1, 80),
      v4(223, 255, 255, 255, 80),
      v4(240, 0, 0, 1, 80),
      v4(255, 255, 255, 254, 80),
      v6([0, 0, 0, 0, 0, 0, 0, 1], 80),
      v6([0xfe80, 0, 0, 0, 0, 0, 0, 1], 80),
      v6([0xfeff, 0, 0, 0, 0, 0, 0, 1], 80),
      v6([0, 0, 0, 0, 0, 0xfffe, 0x7f00, 1], 80),
    ];
    for (const addr of ok) {
      for (const use of ["bind", "connect"] as const) {
        assert.equal(outcome(() => validateSocketAddress(addr, addr.tag, use)), "ok", JSON.stringify(addr));
      }
    }
  });
});

describe("toHostAddress() and fromHostAddress()", () => {
  it("toHostAddress() writes IPv4 as a dotted quad and IPv6 compressed, with flow info and scope id", () => {
    assert.deepEqual(toHostAddress(v4(192, 168, 0, 1, 8080)), { family: "ipv4", address: "192.168.0.1", port: 8080 });
    assert.deepEqual(
      toHostAddress({ tag: "ipv6", val: { port: 443, address: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], flowInfo: 5, scopeId: 7 } }),
      { family: "ipv6", address: "2001:db8::1", port: 443, flowInfo: 5, scopeId: 7 },
    );
  });

  it("fromHostAddress() reads what backends report, filling flow info and scope id", () => {
    assert.deepEqual(fromHostAddress({ family: "ipv4", address: "10.0.0.2", port: 1 }), v4(10, 0, 0, 2, 1));
    assert.deepEqual(
      fromHostAddress({ family: "ipv6", address: "::1", port: 2 }),
      { tag: "ipv6", val: { port: 2, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } },
    );
    assert.deepEqual(
      fromHostAddress({ family: "ipv6", address: "fe80::1%3", port: 2, scopeId: 3, flowInfo: 9 }),
      { tag: "ipv6", val: { port: 2, flowInfo: 9, address: [0xfe80, 0, 0, 0, 0, 0, 0, 1], scopeId: 3 } },
    );
  });

  it("fromHostAddress() and toHostAddress() round-trip", () => {
    const addrs: IpSocketAddress[] = [
      v4(0, 0, 0, 0, 0),
      v4(255, 1, 2, 3, 65535),
      { tag: "ipv6", val: { port: 9, address: [0xfe80, 0, 0, 0, 0xabc, 0, 0, 1], flowInfo: 1, scopeId: 2 } },
      v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], 5),
    ];
    for (const a of addrs) assert.deepEqual(fromHostAddress(toHostAddress(a)), a);
  });

  it("fromHostAddress() throws TypeError for text that is not an address of the family", () => {
    assert.throws(() => fromHostAddress({ family: "ipv4", address: "::1", port: 1 }), TypeError);
    assert.throws(() => fromHostAddress({ family: "ipv6", address: "127.0.0.1", port: 1 }), TypeError);
    assert.throws(() => fromHostAddress({ family: "ipv4", address: "localhost", port: 1 }), TypeError);
  });
});
