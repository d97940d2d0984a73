/**
 * Wire format of the cross-process event-channel transport (one stream
 * socket per pair of domains). Every message is 12 bytes, little-endian:
 *
 * ```
 *  0          4          8          12
 *  +----------+----------+----------+
 *  | op  u32  | port u32 | arg  u32 |
 *  +----------+----------+----------+
 *  EVTCHN_MSG_BIND  (1): the sender bound its local port `arg` to the
 *                        receiver's unbound port `port` (bind_interdomain).
 *  EVTCHN_MSG_SEND  (2): mark the receiver's port `port` pending (send). arg 0.
 *  EVTCHN_MSG_CLOSE (3): the sender closed its end; the receiver's port
 *                        `port` becomes unbound. arg 0.
 * ```
 * `port` is always a port number of the *receiver*. The C peers
 * (test/peers/evtchn-sock.c) speak the same format.
 */
export enum EvtchnMsg {
  EVTCHN_MSG_BIND = 1,
  EVTCHN_MSG_SEND = 2,
  EVTCHN_MSG_CLOSE = 3,
}

export const EVTCHN_MSG_BYTES = 12;

export interface EvtchnMessage {
  op: EvtchnMsg;
  port: number;
  arg: number;
}

export function encodeEvtchnMessage(m: EvtchnMessage): Buffer {
  const b = Buffer.alloc(EVTCHN_MSG_BYTES);
  b.writeUInt32LE(m.op, 0);
  b.writeUInt32LE(m.port >>> 0, 4);
  b.writeUInt32LE(m.arg >>> 0, 8);
  return b;
}

/** Decode one message; `undefined` for an unknown op (a protocol violation). */
export function decodeEvtchnMessage(b: Buffer, at: number): EvtchnMessage | undefined {
  const op = b.readUInt32LE(at);
  if (op !== EvtchnMsg.EVTCHN_MSG_BIND && op !== EvtchnMsg.EVTCHN_MSG_SEND && op !== EvtchnMsg.EVTCHN_MSG_CLOSE) {
    return undefined;
  }
  return { op, port: b.readUInt32LE(at + 4), arg: b.readUInt32LE(at + 8) };
}
