// How a command refuses: a stable error code and a message, thrown inside apply() and answered
// as a failed CommandResult (master/state/master-state.ts).
import type { ErrorCode } from '../../common/errors.js';

export class Fail extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

export const fail = (code: ErrorCode, message: string): never => {
  throw new Fail(code, message);
};
