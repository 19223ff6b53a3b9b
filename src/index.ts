/**
 * slurmkit: submit work to Slurm clusters from TypeScript and get typed job futures back.
 * @packageDocumentation
 */
export { VERSION } from "./version.js";
export { command, defineTask, isTask } from "./tasks.js";
export type { CommandOptions, CommandResult, ResultOf, Task, TaskSpec } from "./tasks.js";
export { afterOk, SlurmExecutor } from "./slurm-executor.js";
export type { MapArrayOptions, SlurmExecutorOptions, SubmitOptions } from "./slurm-executor.js";
export { LocalExecutor } from "./local-executor.js";
export type { LocalExecutorOptions, LocalSubmitOptions } from "./local-executor.js";
export { autoExecutor, slurmAvailable } from "./auto-executor.js";
export type { AutoExecutorOptions } from "./auto-executor.js";
export { loadJobs } from "./load-jobs.js";
export type { LoadJobsOptions } from "./load-jobs.js";
export { Job } from "./job.js";
export type { WaitOptions } from "./job.js";
export { JOB_STATES, isTerminal } from "./job-state.js";
export type { JobState } from "./job-state.js";
export { atRuntime, concatRuntime, isRuntimeValue, UnsetVariableError } from "./runtime-value.js";
export type { Late, LateString, RuntimePart, RuntimeValue } from "./runtime-value.js";
export { condaActivate, container, isSetupStep, lines, modules, setupFile, stageIn, stageOut, venvPerNode } from "./setup-steps.js";
export type { ContainerOptions, ModulesOptions, SetupStep, StageInOptions, StageOutOptions, VenvOptions } from "./setup-steps.js";
export { executorFromFlags, parseSlurmFlags } from "./flags.js";
export type { ExecutorFromFlagsOptions, ParseSlurmFlagsOptions, SlurmFlags } from "./flags.js";
export { PARAMETER_NAMES, parseParameters, slurmParametersSchema } from "./parameters.js";
export type { SignalSpec, SlurmParameters, SlurmParametersInput } from "./parameters.js";
export {
  JobEndedWithoutResultError,
  ParameterError,
  SchedulerError,
  SlurmkitError,
  SubmissionError,
  TaskFailedError,
} from "./errors.js";
export { Watcher, MIN_POLL_INTERVAL_MS } from "./watcher.js";
export type { WatcherIntervals, WatcherStats } from "./watcher.js";
export type { ClusterLimits, NodeCpus, SchedulerCallCounts } from "./scheduler.js";
export { LocalTransport } from "./transport.js";
export { TransportError, isUnreachable } from "./transport.js";
export type { RunOptions, RunResult, SshStage, Transport } from "./transport.js";
export { SshTransport } from "./ssh-transport.js";
export type { SshOptions } from "./ssh-transport.js";
export type { PathMap } from "./path-map.js";
export type { TaskPaths } from "./run-folder.js";
