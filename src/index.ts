/// <reference types="node" preserve="true" />
/**
 * slurmkit: submit work to Slurm clusters from TypeScript and get typed job futures back.
 * @packageDocumentation
 */
export { VERSION } from "./base/version.js";

// Tasks, runtime values and job futures
export { command, defineTask, isTask } from "./core/tasks.js";
export type { CommandOptions, CommandResult, ResultOf, Task, TaskContainer, TaskContext, TaskOptions, TaskSpec } from "./core/tasks.js";
export { expandHostlist, masterPort } from "./core/job-environment.js";
export { jobEnvironment, torchDistributedEnv } from "./sdk/job-environment.js";
export type { JobEnvironment, TorchDistributedEnv } from "./core/job-environment.js";
export { atRuntime, concatRuntime, isRuntimeValue } from "./protocol/runtime-value.js";
export type { Late, LateString, RuntimePart, RuntimeValue } from "./protocol/runtime-value.js";
export { Job } from "./core/job.js";
export { asCompleted } from "./core/as-completed.js";
export type { AsCompletedOptions } from "./core/as-completed.js";
export type { Attempt, WaitOptions } from "./core/job.js";
export type { GpuUsage, TaskUsage } from "./core/usage.js";
export type { TaskRequest } from "./protocol/records.js";
export { report } from "./report/write-report.js";
export type { ReportOptions, ReportWritten } from "./report/write-report.js";
export { JOB_STATES, isTerminal } from "./base/job-state.js";
export type { JobState } from "./base/job-state.js";
export { loadJobs } from "./sdk/load-jobs.js";
export type { LoadJobsOptions } from "./sdk/load-jobs.js";
export { planRerun, rerun } from "./slurm/rerun.js";
export type { RerunOptions } from "./slurm/rerun.js";
export { progress } from "./report/progress.js";
export type { Progress, ProgressOptions } from "./report/progress.js";

// Executors
export { SlurmExecutor } from "./slurm/executor.js";
export type { SlurmExecutorOptions } from "./slurm/executor.js";
export { PbsExecutor } from "./pbs/executor.js";
export type { PbsExecutorOptions } from "./pbs/executor.js";
export { PBS_PARAMETER_NAMES, parsePbsParameters } from "./pbs/parameters.js";
export type { PbsParametersInput } from "./pbs/parameters.js";
export { pbsAvailable } from "./pbs/scheduler.js";
export type { PbsCallCounts } from "./pbs/scheduler.js";
export type { ExecutorSettings } from "./slurm/options.js";
export type { Executor, MapArrayOptions, SubmissionPreview, SubmitOptions } from "./engine/executor.js";
export { formatPreview } from "./engine/executor.js";
export { afterOk } from "./slurm/backend.js";
export { LocalExecutor } from "./local/executor.js";
export type { LocalExecutorOptions, LocalSubmitOptions } from "./local/executor.js";
export { autoExecutor } from "./sdk/auto-executor.js";
export { slurmAvailable } from "./slurm/scheduler.js";
export type { AutoExecutorOptions } from "./sdk/auto-executor.js";
export { executorFromFlags, parsePbsFlags, parseSlurmFlags } from "./sdk/flags.js";
export type { ExecutorFromFlagsOptions, ParseSlurmFlagsOptions, SlurmFlags } from "./sdk/flags.js";

// Parameters and setup steps
export { PARAMETER_NAMES, parseParameters } from "./slurm/parameters.js";
export type { SignalSpec, SlurmParameters, SlurmParametersInput } from "./slurm/parameters.js";
export { condaActivate, container, isSetupStep, lines, modules, setupFile, stageIn, stageOut, venvPerNode } from "./setup/index.js";
export type { ContainerOptions, ModulesOptions, SetupStep, StageInOptions, StageOutOptions, VenvOptions } from "./setup/index.js";
export { CONTAINER_RUNTIMES } from "./protocol/container.js";
export type { ContainerRecord, ContainerRuntime } from "./protocol/container.js";

// The watcher, as executor.watcher shows it
export type { JobWatcher, WatcherHealth, WatcherIntervals, WatcherStats } from "./engine/watcher.js";
export type { SchedulerCallCounts } from "./slurm/scheduler.js";

// Transports
export { LocalTransport } from "./transport/local.js";
export { SshTransport } from "./transport/ssh.js";
export type { CheckLine, CheckOptions, CheckReport, CheckStatus } from "./slurm/doctor.js";
export { OpenSshTransport, type OpenSshOptions } from "./transport/openssh.js";
export type { OpenSshTarget, SshTarget } from "./transport/ssh-target.js";
export type { SshOptions } from "./transport/ssh-options.js";
export { isUnreachable } from "./transport/transport.js";
export type { RunOptions, RunResult, Transport } from "./transport/transport.js";
export type { FilePart } from "./protocol/atomic.js";
export type { PathMap } from "./slurm/path-map.js";
export type { CodeOptions } from "./code/options.js";
export type { TaskPaths } from "./protocol/run-folder.js";

// Errors
export {
  AmbiguousSubmissionError,
  CommandError,
  ContainerError,
  JobEndedWithoutResultError,
  NodeUnusableError,
  ParameterError,
  RunFolderError,
  SchedulerError,
  SlurmkitError,
  SubmissionError,
  TaskFailedError,
  TaskInterruptedError,
  TransportError,
  UnsetVariableError,
  WaitTimeoutError,
} from "./base/errors.js";
export type { SshStage } from "./base/errors.js";
