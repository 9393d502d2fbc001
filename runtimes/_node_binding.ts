/**
 * Binding without listening on top of node:net, shared by the Node and Deno
 * backends.
 *
 * node:net has no public bind-without-listen. Node and Deno both have the
 * internal `net._createServerHandle(address, port, addressType, fd, flags)`,
 * which creates a TCP handle and binds it (SO_REUSEADDR on) without listening:
 * peers are refused, the port is resolved, and `server.listen(handle)` listens
 * on it later. Bun's node:net lacks it; there a bind is a probe (listen on the
 * address, read the port, close again), which refuses peers but does not hold
 * the port until listen or connect. See {@link canBindWithoutListening}.
 *
 * @module
 */

import net from "node:net";
import type {
  BackendBinding,
  BackendListener,
  BindRequest,
  HostAddress,
  ListenRequest,
  TcpOptionName,
  TcpOptions,
} from "../core/backend.ts";
import { NetworkError } from "../core/errors.ts";
import { NodeConnection, nodeHostAddress } from "./_node_connection.ts";
import { errnoToNetworkError, formatAddress, toNetworkError } from "./_node_errors.ts";

/** libuv's UV_TCP_IPV6ONLY bind flag. */
const UV_TCP_IPV6ONLY = 1;

/** The part of the internal TCP handle this module uses. */
interface ServerHandle {
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  close(): void;
}

type CreateServerHandle = (
  address: string,
  port: number,
  addressType: 4 | 6,
  fd: number | undefined,
  flags: number,
) => ServerHandle | number;

const createServerHandle = (net as unknown as { _createServerHandle?: CreateServerHandle })
  ._createServerHandle;

/**
 * Whether this runtime's node:net can bind without listening (Node and Deno:
 * yes; Bun: no, binds are probes there).
 *
 * @example
 * ```ts
 * import { canBindWithoutListening } from "./_node_binding.ts";
 * if (!canBindWithoutListening) console.warn("Bound ports are not held until listen");
 * ```
 */
export const canBindWithoutListening: boolean = typeof createServerHandle === "function";

/**
 * A bound local address. Holds a bound, not listening, OS socket where the
 * runtime allows; otherwise (Bun, or after a failed listen gave the handle
 * away) only the address, which listen and connect then bind again.
 *
 * @example
 * ```ts
 * import { reserveAddress } from "./_node_binding.ts";
 * const reservation = await reserveAddress({
 *   local: { family: "ipv4", address: "127.0.0.1", port: 0 },
 *   ipv6Only: false,
 * });
 * console.log(reservation.localAddress.port > 0); // true
 * reservation.release();
 * ```
 */
export class NodeReservation {
  /** The bound address, port resolved. */
  readonly localAddress: HostAddress;
  /** Whether the socket was bound IPv6-only. */
  readonly ipv6Only: boolean;
  #handle: ServerHandle | undefined;

  /**
   * @param localAddress The bound address.
   * @param ipv6Only Whether it was bound IPv6-only.
   * @param handle The bound handle, if the runtime has one.
   */
  constructor(localAddress: HostAddress, ipv6Only: boolean, handle: ServerHandle | undefined) {
    this.localAddress = localAddress;
    this.ipv6Only = ipv6Only;
    this.#handle = handle;
  }

  /**
   * Hands the bound handle over to a new owner (a server about to listen).
   *
   * @returns The handle, or `undefined` when there is none (any more).
   */
  take(): ServerHandle | undefined {
    const handle = this.#handle;
    this.#handle = undefined;
    return handle;
  }

  /** Closes the bound handle, freeing the port. Idempotent. */
  release(): void {
    this.take()?.close();
  }
}

/**
 * Binds a local address without listening (a probe on Bun, see the module
 * doc). Synchronous except for a failing probe, whose error node:net only
 * emits asynchronously.
 *
 * @param request The address and whether an IPv6 socket is v6-only.
 * @returns The reservation.
 * @throws {NetworkError} `address-in-use`, `address-not-bindable` and the like,
 * thrown or as a rejection.
 * @example
 * ```ts
 * import { reserveAddress } from "./_node_binding.ts";
 * const r = await reserveAddress({ local: { family: "ipv6", address: "::1", port: 0 }, ipv6Only: true });
 * r.release();
 * ```
 */
export function reserveAddress(request: BindRequest): NodeReservation | Promise<NodeReservation> {
  const { local, ipv6Only } = request;
  const what = `Bind to ${formatAddress(local.address, local.port)}`;
  const v6 = local.family === "ipv6";
  if (createServerHandle === undefined) return probeAddress(request, what);
  const result = createServerHandle(
    local.address,
    local.port,
    v6 ? 6 : 4,
    undefined,
    v6 && ipv6Only ? UV_TCP_IPV6ONLY : 0,
  );
  if (typeof result === "number") throw errnoToNetworkError(result, "bind", what);
  const out: { address?: string; port?: number } = {};
  const status = result.getsockname(out);
  // libuv defers EADDRINUSE from bind() to listen/connect; it shows here as a
  // getsockname error (Node) or as an unbound port 0 (Deno).
  if (status < 0) {
    result.close();
    throw errnoToNetworkError(status, "bind", what);
  }
  if (!out.port || (local.port !== 0 && out.port !== local.port)) {
    result.close();
    throw new NetworkError("address-in-use", `${what} failed: EADDRINUSE`);
  }
  const bound = nodeHostAddress(out.address, out.port);
  if (local.scopeId !== undefined) bound.scopeId = local.scopeId;
  return new NodeReservation(bound, ipv6Only, result);
}

function probeAddress(
  request: BindRequest,
  what: string,
): NodeReservation | Promise<NodeReservation> {
  const { local, ipv6Only } = request;
  const server = net.createServer();
  let failure: unknown;
  let settle: ((ok: boolean) => void) | undefined;
  server.on("error", (error: unknown) => {
    failure = error;
    settle?.(false);
  });
  server.on("listening", () => settle?.(true));
  server.listen({ host: local.address, port: local.port, ipv6Only, backlog: 1 });
  const finish = (): NodeReservation => {
    const address = server.address() as net.AddressInfo;
    server.close();
    const bound = nodeHostAddress(address.address, address.port);
    if (local.scopeId !== undefined) bound.scopeId = local.scopeId;
    return new NodeReservation(bound, ipv6Only, undefined);
  };
  if (server.listening) return finish();
  return new Promise((resolve, reject) => {
    settle = (ok) => {
      settle = undefined;
      if (ok) resolve(finish());
      else reject(toNetworkError(failure, "bind", what));
    };
  });
}

/**
 * The Node backend's binding: listens on the bound handle with node:net.
 *
 * @example
 * ```ts
 * import { NodeBinding, reserveAddress } from "./_node_binding.ts";
 * const binding = new NodeBinding(
 *   await reserveAddress({ local: { family: "ipv4", address: "127.0.0.1", port: 0 }, ipv6Only: false }),
 * );
 * binding.close();
 * ```
 */
export class NodeBinding implements BackendBinding {
  #reservation: NodeReservation;
  // "bound" until listen succeeds or connect/close takes the address.
  #state: "bound" | "listening" | "released" = "bound";

  /**
   * @param reservation The bound address; the binding owns it from now on.
   */
  constructor(reservation: NodeReservation) {
    this.#reservation = reservation;
  }

  /** The bound address, with the port resolved. */
  get localAddress(): HostAddress {
    return this.#reservation.localAddress;
  }

  /**
   * Listens on the bound handle with a node:net server (allowHalfOpen,
   * pauseOnConnect). Synchronous when node:net reports the server listening
   * at once, which it does on success in Node, Deno and Bun.
   *
   * @param request The backlog and the callbacks.
   * @returns The listener.
   * @throws {NetworkError} `address-in-use` when another socket listens on the
   * port (SO_REUSEADDR lets two sockets bind it), `invalid-state` when this
   * binding was used already. After a failed listen the binding stays usable.
   */
  listen(request: ListenRequest): BackendListener | Promise<BackendListener> {
    if (this.#state !== "bound") {
      throw new NetworkError("invalid-state", `Cannot listen on a binding that is ${this.#state}`);
    }
    const local = this.#reservation.localAddress;
    const what = `Listen on ${formatAddress(local.address, local.port)}`;
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    let failure: unknown;
    let settle: ((ok: boolean) => void) | undefined;
    const onError = (error: unknown): void => {
      failure = error;
      settle?.(false);
    };
    const onListening = (): void => settle?.(true);
    server.on("error", onError);
    server.on("listening", onListening);
    const handle = this.#reservation.take();
    const backlog = Math.min(request.backlog, 0x7fff_ffff);
    try {
      if (handle !== undefined) server.listen(handle, backlog);
      else {
        server.listen({
          host: local.address,
          port: local.port,
          backlog,
          ipv6Only: this.#reservation.ipv6Only,
        });
      }
    } catch (error) {
      throw toNetworkError(error, "listen", what);
    }
    const finish = (ok: boolean): NodeListener => {
      // node:net closed the handle; the address stays ours to retry with.
      if (!ok) throw toNetworkError(failure, "listen", what);
      server.off("error", onError);
      server.off("listening", onListening);
      this.#state = "listening";
      return new NodeListener(server, request);
    };
    if (server.listening) return finish(true);
    return new Promise((resolve, reject) => {
      settle = (ok) => {
        settle = undefined;
        try {
          resolve(finish(ok));
        } catch (error) {
          reject(error);
        }
      };
    });
  }

  /**
   * Gives up the address for a connection from it: frees the port so that
   * node:net can bind it again with `localAddress`/`localPort`.
   *
   * @returns The address to connect from.
   * @throws {NetworkError} `invalid-state` when the binding listens or was used.
   */
  release(): HostAddress {
    if (this.#state !== "bound") {
      throw new NetworkError(
        "invalid-state",
        `Cannot connect from a binding that is ${this.#state}`,
      );
    }
    this.#state = "released";
    this.#reservation.release();
    return this.#reservation.localAddress;
  }

  /** Frees the address unless a listener or a connection owns it now. Idempotent. */
  close(): void {
    if (this.#state !== "bound") return;
    this.#state = "released";
    this.#reservation.release();
  }
}

/**
 * A listening node:net server. Accepted sockets arrive paused
 * (pauseOnConnect), so no data is read before the core starts them.
 *
 * node:net accepts on its own: {@link NodeListener.pause} cannot stop it, and
 * the core bounds its queue instead. Options cannot be set on a listening
 * node:net socket; the core applies them to each accepted connection.
 *
 * @example
 * ```ts
 * import net from "node:net";
 * import { NodeListener } from "./_node_binding.ts";
 * import { defaultOptions } from "../core/_options.ts";
 * const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
 * server.listen(0, "127.0.0.1", () => {
 *   const listener = new NodeListener(server, {
 *     backlog: 128,
 *     options: defaultOptions(),
 *     changed: new Set(),
 *     onConnection: (connection) => connection.close(),
 *     onError: () => {},
 *   });
 *   listener.close();
 * });
 * ```
 */
export class NodeListener implements BackendListener {
  /** The address the server listens on. */
  readonly localAddress: HostAddress;
  #server: net.Server;
  #request: ListenRequest;
  #closed = false;
  // Whether accepted sockets' local address is the listener's (not "0.0.0.0" or "::").
  #specific: boolean;

  /**
   * @param server A listening server created with `allowHalfOpen` and `pauseOnConnect`.
   * @param request Where accepted connections and errors go.
   */
  constructor(server: net.Server, request: ListenRequest) {
    this.#server = server;
    this.#request = request;
    const address = server.address() as net.AddressInfo;
    this.localAddress = nodeHostAddress(address.address, address.port);
    this.#specific = address.address !== "0.0.0.0" && address.address !== "::";
    server.on("connection", this.#onConnection);
    server.on("error", this.#onError);
  }

  #onConnection = (socket: net.Socket): void => {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const local = this.#specific ? { ...this.localAddress } : undefined;
    this.#request.onConnection(new NodeConnection(socket, local));
  };

  #onError = (error: unknown): void => {
    if (this.#closed) return;
    this.#request.onError(
      toNetworkError(
        error,
        "accept",
        `Accept on ${formatAddress(this.localAddress.address, this.localAddress.port)}`,
      ),
    );
  };

  /** node:net pushes accepted connections; there is nothing to pause. */
  pause(): void {}

  /** See {@link pause}. */
  resume(): void {}

  /**
   * Options cannot be set on a listening node:net socket.
   *
   * @param _name The option.
   * @param _value Its value.
   * @returns Always `false`.
   */
  setOption<K extends TcpOptionName>(_name: K, _value: TcpOptions[K]): boolean {
    return false;
  }

  /** Stops listening; connections already handed over are unaffected. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
  }
}
