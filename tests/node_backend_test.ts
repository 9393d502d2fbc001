// createNodeBackend() against real loopback sockets; runs under Node, Deno and Bun.

import { describe } from "node:test";
import { createNodeBackend } from "../runtimes/node.ts";
import { backendSuite, RUNTIME } from "./_backend_suite.ts";

describe("runtimes/node.ts", () => {
  backendSuite({
    label: "createNodeBackend()",
    create: createNodeBackend,
    noIpv6Only: RUNTIME === "deno" ? "Deno's node:net ignores UV_TCP_IPV6ONLY" : false,
  });
});
