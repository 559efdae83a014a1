/** Runs once before the suite. Builds nothing: `npm test` runs `npm run build` first (pretest). */
export default function setup(): void {}
