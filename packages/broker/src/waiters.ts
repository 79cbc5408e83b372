import type { Delivery } from './broker.ts';

/** A receive() call waiting for a message (the long poll of Broker.receive); both brokers park them alike. */
export interface Waiter {
  resolve(delivery: Delivery | null): void;
  timer: NodeJS.Timeout;
}

/** Where the receive() calls of one queue wait, longest first. */
export interface WaitingRoom {
  waiters: Waiter[];
}

/**
 * Parks a receive() call in `room` until a delivery is handed to it (nextWaiter), or resolves null
 * once waitMs pass or `signal` aborts; then it leaves the room and `onGiveUp` runs before it resolves.
 */
export function waitForDelivery(room: WaitingRoom, waitMs: number, signal: AbortSignal | undefined, onGiveUp?: () => void): Promise<Delivery | null> {
  return new Promise<Delivery | null>((resolve) => {
    const giveUp = (): void => {
      clearTimeout(waiter.timer);
      room.waiters = room.waiters.filter((w) => w !== waiter);
      onGiveUp?.();
      waiter.resolve(null);
    };
    const waiter: Waiter = {
      resolve: (delivery) => {
        signal?.removeEventListener('abort', giveUp);
        resolve(delivery);
      },
      timer: setTimeout(giveUp, waitMs),
    };
    signal?.addEventListener('abort', giveUp, { once: true });
    room.waiters.push(waiter);
  });
}

/** The longest-waiting receive() call, its timeout stopped, to hand a delivery to; undefined when nobody waits. */
export function nextWaiter(room: WaitingRoom): Waiter | undefined {
  const waiter = room.waiters.shift();
  if (waiter) clearTimeout(waiter.timer);
  return waiter;
}

/** Ends every wait in `room` with null (the broker closes). */
export function releaseWaiters(room: WaitingRoom): void {
  for (const waiter of room.waiters) {
    clearTimeout(waiter.timer);
    waiter.resolve(null);
  }
  room.waiters = [];
}
