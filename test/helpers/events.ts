// Waiting for an event of an emitter (the SC, the KDC) in tests.

/** The next event `ev` of an emitter that satisfies pred; rejects after ms. */
export function nextEvent<T>(em: { on(ev: string, fn: (e: T) => void): unknown; off(ev: string, fn: (e: T) => void): unknown }, ev: string, pred: (e: T) => boolean = () => true, ms = 10000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      em.off(ev, h);
      reject(new Error(`no '${ev}' event in ${ms} ms`));
    }, ms);
    const h = (e: T) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      em.off(ev, h);
      resolve(e);
    };
    em.on(ev, h);
  });
}
