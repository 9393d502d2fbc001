// Guest of world `poll-race` (tests/guests/guests.wit), built with
// componentize-qjs. Blocks in a single poll on a socket and a clock; the host
// decides which becomes ready first.

import { instanceNetwork } from "wasi:sockets/instance-network@0.2.6";
import { createTcpSocket } from "wasi:sockets/tcp-create-socket@0.2.6";
import { poll } from "wasi:io/poll@0.2.6";
import { subscribeDuration } from "wasi:clocks/monotonic-clock@0.2.6";

function describe(e) {
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

export function race(port, timeoutNs) {
  const socket = createTcpSocket("ipv4");
  let input;
  let output;
  try {
    socket.startConnect(instanceNetwork(), { tag: "ipv4", val: { port, address: [127, 0, 0, 1] } });
    const connecting = socket.subscribe();
    connecting.block();
    connecting[Symbol.dispose]();
    [input, output] = socket.finishConnect();

    const readable = input.subscribe();
    const timeout = subscribeDuration(timeoutNs);
    const ready = poll([readable, timeout]);
    readable[Symbol.dispose]();
    timeout[Symbol.dispose]();
    return ready;
  } catch (e) {
    throw `race failed: ${describe(e)}`;
  } finally {
    input?.[Symbol.dispose]();
    output?.[Symbol.dispose]();
    socket[Symbol.dispose]();
  }
}
