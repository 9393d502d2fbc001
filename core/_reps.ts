// The reps of this package's resource objects, as jco's optimized import
// bindings see them (core/_cabi.ts): jco uses an object's
// `Symbol.for("cabiRep")` as its rep when its own code puts the object in a
// handle table, and a lowering finds the object again by that rep. Objects
// get a rep on first asking, so an object jco never sees stays out of the
// registry; a dropped one leaves it. Reps come from a range that jco's own
// counters and preview2-shim's ids do not reach.

/** The property jco takes an object's rep from. */
export const CABI_REP: unique symbol = Symbol.for("cabiRep");
/** The static method jco drops a rep it does not hold an object for with. */
export const CABI_DISPOSE: unique symbol = Symbol.for("cabiDispose");

/** A handle table entry's own flag (jco's T_FLAG); reps stay below it. */
export const T_FLAG = 1 << 30;
const FIRST_REP = 1 << 29;
let nextRep = FIRST_REP;
const repOf = new WeakMap<object, number>();
const byRep = new Map<number, object>();

/**
 * A fresh rep.
 *
 * @returns A number in [2^29, 2^30).
 * @throws {Error} Once the range is used up.
 */
export function newRep(): number {
  if (nextRep >= T_FLAG) throw new Error("Out of resource reps");
  return nextRep++;
}

/**
 * The object of a rep, while it is registered.
 *
 * @param rep A rep.
 * @returns The object, or undefined.
 */
export function objectOfRep(rep: number): object | undefined {
  return byRep.get(rep);
}

/**
 * Gives a class's instances a rep on first asking, and the class the static
 * drop jco calls for reps it holds no object for. Idempotent.
 *
 * @param cls The resource class.
 */
export function giveReps(cls: { prototype: object }): void {
  if (Object.prototype.hasOwnProperty.call(cls.prototype, CABI_REP)) return;
  Object.defineProperty(cls.prototype, CABI_REP, {
    get(this: object): number {
      return repOfObject(this);
    },
  });
  Object.defineProperty(cls, CABI_DISPOSE, {
    value: (rep: number): void => {
      const object = byRep.get(rep) as Partial<Disposable> | undefined;
      byRep.delete(rep);
      object?.[Symbol.dispose]?.();
    },
  });
}

/**
 * The rep of any object, registering it on first asking: this package's own
 * (as their `Symbol.for("cabiRep")` getter does) or another host's (an error
 * of preview2-shim's stdio streams, say) that a lowering hands to the guest.
 *
 * @param object The object.
 * @returns Its rep.
 */
export function repOfObject(object: object): number {
  let rep = repOf.get(object);
  if (rep === undefined) {
    rep = newRep();
    repOf.set(object, rep);
    byRep.set(rep, object);
  }
  return rep;
}

/**
 * Takes an object out of the registry, once its handle is dropped.
 *
 * @param object A resource object, with a rep or not.
 */
export function forgetRep(object: object): void {
  const rep = repOf.get(object);
  if (rep !== undefined) byRep.delete(rep);
}
