/** zod → InvalidRequestError with one issue per problem, paths in the wire's snake_case. */
import type { z } from 'zod'
import { InvalidRequestError } from '../errors.js'

export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what = 'body'): z.infer<S> {
  const result = schema.safeParse(body ?? {})
  if (result.success) return result.data
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.length ? issue.path.join('.') : what,
    message: issue.message,
  }))
  throw new InvalidRequestError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues)
}
