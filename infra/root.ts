/**
 * The project's own folder, whatever the working directory: `recipe` is also run from a user's data
 * folder (npm link / npm install -g), and paths to the project's files must not depend on where.
 */
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));
