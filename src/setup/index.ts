// The setup steps, one file per family; the public index re-exports these.
export { isSetupStep, STEP_HELPERS, type SetupStep } from "./step.js";
export { modules, type ModulesOptions } from "./modules.js";
export { venvPerNode, type VenvOptions } from "./venv.js";
export { stageIn, stageOut, type StageInOptions, type StageOutOptions } from "./stage.js";
export { condaActivate } from "./conda.js";
export { container, type ContainerOptions } from "./container.js";
export { lines, setupFile } from "./raw.js";
