/**
 * A byte transport carrying xenstore messages: a unix socket, the xenbus
 * character device, an in-process channel or a MessagePort. Byte chunks may
 * split messages anywhere; the client and server parse incrementally.
 */
export interface XsTransport {
  /** Queue bytes for the peer. */
  send(bytes: Uint8Array): void;
  /** Register the receiver of incoming chunks (one receiver). */
  onData(cb: (chunk: Uint8Array) => void): void;
  /** Called once when the transport is gone (peer closed, error, or close()). */
  onClose(cb: (err?: Error) => void): void;
  close(): void;
  /**
   * Optional: whether the transport should keep the process alive. The
   * client holds it while a reply is awaited and releases it when none is,
   * so an idle connection (watches included) does not keep Node running.
   */
  hold?(on: boolean): void;
}
