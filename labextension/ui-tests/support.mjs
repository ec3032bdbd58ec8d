// What the browser tests share: reading their settings, logging their steps, stopping at a failed check, polling.

/** The environment variable `name`, or exit 2 saying it must be set. */
export function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name}`);
    process.exit(2);
  }
  return value;
}

/** A `step(message)` that logs the message with the time and keeps it in `result.steps`. */
export function stepper(result) {
  return (message) => {
    const line = `[${new Date().toISOString().slice(11, 19)}] ${message}`;
    result.steps.push(line);
    console.log(line);
  };
}

/** Stop the test with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** Poll `read()` until `accept(value)`, recording every distinct value in `history`. */
export async function waitFor(read, accept, what, { timeout = 60000, interval = 100, history = null } = {}) {
  const end = Date.now() + timeout;
  let value;
  for (;;) {
    value = await read();
    if (history && value !== undefined && value !== null && history[history.length - 1] !== value) {
      history.push(value);
    }
    if (accept(value)) {
      return value;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout / 1000} s waiting for ${what} (last value: ${JSON.stringify(value)})`);
    }
    await new Promise(resolve => setTimeout(resolve, interval));
  }
}
