// quantfold sandbox prelude: evaluated once per sandbox before the strategy source.
// Called with Rust functions: now() = event time of the current call (ms), random() = seeded
// ChaCha draw in [0, 1), log(level, ...args) = buffered log line.
(function (now, random, log) {
  "use strict";
  const G = globalThis;
  const RealDate = G.Date;
  const P = RealDate.prototype;
  const construct = Reflect.construct;
  const define = (obj, name, value) =>
    Object.defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });

  // Date: no-argument forms read the event time, never the wall clock; the multi-argument
  // constructor is interpreted in UTC (the machine's time zone must not leak into a strategy).
  const SandboxDate = function Date(...args) {
    if (new.target === undefined) {
      return construct(RealDate, [now()]).toString();
    }
    let a = args;
    if (args.length === 0) a = [now()];
    else if (args.length > 1) a = [RealDate.UTC(...args)];
    return construct(RealDate, a, new.target);
  };
  Object.defineProperty(SandboxDate, "length", { value: 7 });
  SandboxDate.prototype = P;
  define(P, "constructor", SandboxDate);
  define(SandboxDate, "now", function now_() { return now(); });
  define(SandboxDate, "parse", RealDate.parse);
  define(SandboxDate, "UTC", RealDate.UTC);
  // Local-time accessors behave as UTC.
  for (const n of ["FullYear", "Month", "Date", "Day", "Hours", "Minutes", "Seconds", "Milliseconds"]) {
    define(P, "get" + n, P["getUTC" + n]);
    if (n !== "Day") define(P, "set" + n, P["setUTC" + n]);
  }
  define(P, "getTimezoneOffset", function getTimezoneOffset() {
    return Number.isNaN(this.getTime()) ? NaN : 0;
  });
  const iso = (d) => (Number.isNaN(d.getTime()) ? "Invalid Date" : P.toISOString.call(d));
  define(P, "toString", function toString() { return iso(this); });
  define(P, "toLocaleString", function toLocaleString() { return iso(this); });
  define(P, "toDateString", function toDateString() {
    const s = iso(this); return s === "Invalid Date" ? s : s.slice(0, 10);
  });
  define(P, "toLocaleDateString", P.toDateString);
  define(P, "toTimeString", function toTimeString() {
    const s = iso(this); return s === "Invalid Date" ? s : s.slice(11);
  });
  define(P, "toLocaleTimeString", P.toTimeString);
  define(G, "Date", SandboxDate);

  define(Math, "random", random);

  // No timers, network or modules: fail loudly instead of with a bare ReferenceError.
  for (const n of ["setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval",
                   "clearImmediate", "fetch", "require"]) {
    define(G, n, function () {
      throw new Error(n + " is not available in the quantfold strategy sandbox " +
        "(no timers, network or file access; strategies are driven by st_heartbeat and ctx.api)");
    });
  }

  // console.* goes to the same buffered log as ctx.log.*.
  const console = {};
  for (const [n, level] of [["log", "info"], ["info", "info"], ["debug", "debug"],
                            ["warn", "warn"], ["error", "error"], ["trace", "debug"]]) {
    define(console, n, (...args) => log(level, ...args));
  }
  define(G, "console", console);
});
