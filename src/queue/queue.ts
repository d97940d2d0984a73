/**
 * PersistentQueue: a producer/consumer ring stored on any BlockDevice
 * (format in ./format.ts). `push` resolves once the item is durable; `peek`,
 * `pop`, `advance` consume in order. Reopen after a restart with `open`.
 *
 *   const q = await PersistentQueue.format(dev);        // once
 *   const q = await PersistentQueue.open(dev);          // after a restart
 *   if (!await q.push(bytes)) { ... full: consume, then retry ... }
 *   const item = await q.peek(); await q.advance();     // or: await q.pop()
 *
 * One producer and one consumer at a time; they may be different
 * processes opening the same device (each re-reads the other's slots when
 * it runs out of room or items). A process that only produces simply never
 * pops. Calls on one side are served in call order.
 *
 * Cross-process assumption: what one process's flush makes durable
 * includes what the other wrote and it read (true of `file:` — fdatasync
 * covers the whole file — and of one shared disk).
 */
import type { BlockDevice } from '../block/types.js';
import { InvalidArgumentError } from '../errors.js';
import { randomBytes } from 'node:crypto';
import { QueueArea } from './area.js';
import { Consumer } from './consumer.js';
import {
  CONSUMER_SLOTS, DATA_START, MAGIC_CONSUMER, MAGIC_PRODUCER, PRODUCER_SLOTS,
  decodeSuperblock, encodeSlot, encodeSuperblock, type Superblock,
} from './format.js';
import { Producer } from './producer.js';
import { IoError } from '../errors.js';

export interface QueueFormatOptions {
  /** Sectors in the data ring (default: the rest of the device after the 8 header sectors). */
  readonly dataSectors?: bigint;
}

export interface QueueStats {
  /** Producer position (bytes since format). */
  readonly producer: bigint;
  /** Consumer position. */
  readonly consumer: bigint;
  /** Bytes in the data ring. */
  readonly capacityBytes: bigint;
  readonly maxItemBytes: number;
}

export class PersistentQueue {
  #consumerTurn: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly device: BlockDevice,
    private readonly area: QueueArea,
    private readonly producer: Producer,
    private readonly consumer: Consumer,
  ) {}

  /** Writes an empty queue onto `dev` (destroying what was there) and opens it. */
  static async format(dev: BlockDevice, options: QueueFormatOptions = {}): Promise<PersistentQueue> {
    const info = dev.info();
    if (!info.readWrite) throw new InvalidArgumentError('device', 'is read-only: a queue needs to write');
    const avail = info.sizeSectors - DATA_START;
    const dataSectors = options.dataSectors ?? avail;
    if (typeof dataSectors !== 'bigint' || dataSectors < 2n) {
      throw new InvalidArgumentError('dataSectors', `must be a bigint >= 2, got ${String(dataSectors)}`);
    }
    if (dataSectors > avail) {
      throw new InvalidArgumentError('device', `${info.sizeSectors} sectors is too small for ${DATA_START} header sectors and ${dataSectors} data sectors`);
    }
    const S = info.sectorSize;
    const sb: Superblock = { sectorSize: S, queueId: randomBytes(8).readBigUInt64LE(0), dataStart: DATA_START, dataSectors };
    const head = new Uint8Array(S * Number(DATA_START));
    head.set(encodeSlot(MAGIC_PRODUCER, sb.queueId, { seq: 0n, position: 0n }, S), S * Number(PRODUCER_SLOTS));
    head.set(encodeSlot(MAGIC_CONSUMER, sb.queueId, { seq: 0n, position: 0n }, S), S * Number(CONSUMER_SLOTS));
    // Sector 0 zeroed and the slots written /before/ the superblock that makes
    // them count: a crash mid-format leaves no queue, never a half-made one.
    await dev.write(0n, [head]);
    await dev.flush();
    await dev.write(0n, [encodeSuperblock(sb)]);
    await dev.flush();
    return PersistentQueue.open(dev);
  }

  /** Opens the queue on `dev`: `invalid-argument` if there is none, `io` if its header is corrupt. */
  static async open(dev: BlockDevice): Promise<PersistentQueue> {
    const info = dev.info();
    const first = new Uint8Array(info.sectorSize);
    await dev.read(0n, [first]);
    const sb = decodeSuperblock(first);
    if (typeof sb === 'string') throw new InvalidArgumentError('device', `holds no queue (${sb}); format it first`);
    if (sb.sectorSize !== info.sectorSize) {
      throw new InvalidArgumentError('device', `queue was formatted with ${sb.sectorSize}-byte sectors, device has ${info.sectorSize}`);
    }
    if (sb.dataStart < DATA_START || sb.dataSectors < 2n || sb.dataStart + sb.dataSectors > info.sizeSectors) {
      throw new IoError(`queue: superblock data area ${sb.dataStart}+${sb.dataSectors} does not fit the ${info.sizeSectors}-sector device`);
    }
    const area = new QueueArea(dev, sb);
    const p = await area.readSlot(MAGIC_PRODUCER, PRODUCER_SLOTS);
    const c = await area.readSlot(MAGIC_CONSUMER, CONSUMER_SLOTS);
    if (c.position > p.position || p.position - c.position > area.dataBytes) {
      throw new IoError(`queue: positions are inconsistent (producer ${p.position}, consumer ${c.position}, ring ${area.dataBytes} bytes)`);
    }
    return new PersistentQueue(dev, area, new Producer(area, p, c.position), new Consumer(area, c, p.position));
  }

  /**
   * Appends `item`. Resolves true once it is durable (it survives a crash
   * from then on), false if the queue is full (backpressure: consume, then
   * push again; every push queued behind a refused one is refused too, so
   * order holds). Rejects `invalid-argument` for an item larger than
   * `stats().maxItemBytes`, or with the device's error, after which the
   * queue refuses pushes until reopened.
   */
  async push(item: Uint8Array): Promise<boolean> {
    const ok = await this.producer.push(item);
    if (ok) this.consumer.noteProducer(this.producer.position);
    return ok;
  }

  /** The next item without consuming it, or undefined if the queue is empty. `io` if it fails its checksum. */
  peek(): Promise<Uint8Array | undefined> {
    return this.#turn(() => this.consumer.peekAt(0));
  }

  /** Consumes the next item (peeking it first if needed); resolves whether there was one. */
  advance(): Promise<boolean> {
    return this.#turn(async () => (await this.consumer.peekAt(0)) !== undefined && (await this.#consume(1)) === 1);
  }

  /** Takes the next item, or undefined if the queue is empty. */
  async pop(): Promise<Uint8Array | undefined> {
    return (await this.popMany(1))[0];
  }

  /** Takes up to `max` items with one position update (at least once: see Consumer). */
  popMany(max: number): Promise<Uint8Array[]> {
    if (!Number.isSafeInteger(max) || max < 1) return Promise.reject(new InvalidArgumentError('max', `must be a positive integer, got ${String(max)}`));
    return this.#turn(async () => {
      const items: Uint8Array[] = [];
      for (let i = 0; i < max; i++) {
        const item = await this.consumer.peekAt(i);
        if (item === undefined) break;
        items.push(item);
      }
      await this.#consume(items.length);
      return items;
    });
  }

  stats(): QueueStats {
    return {
      producer: this.producer.position,
      consumer: this.consumer.position,
      capacityBytes: this.area.dataBytes,
      maxItemBytes: this.producer.maxItemBytes,
    };
  }

  async #consume(n: number): Promise<number> {
    const done = await this.consumer.advance(n);
    this.producer.noteConsumer(this.consumer.position);
    return done;
  }

  /** Consumer calls run one at a time, in call order. */
  #turn<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#consumerTurn.then(f, f);
    this.#consumerTurn = run.catch(() => undefined);
    return run;
  }
}
