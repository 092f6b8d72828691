/** The JSON value of `text`, or undefined when it is not JSON (an answer that may be either). */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}
