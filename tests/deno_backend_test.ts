// createDenoBackend() against real loopback sockets; needs Deno.

import { describe } from "node:test";
import { createDenoBackend } from "../runtimes/deno.ts";
import { backendSuite } from "./_backend_suite.ts";

describe("runtimes/deno.ts", { skip: typeof Deno === "undefined" ? "needs Deno" : false }, () => {
  backendSuite({
    label: "createDenoBackend()",
    create: createDenoBackend,
    noIpv6Only: 'Deno.listen on "::" is always dual-stack',
  });
});
