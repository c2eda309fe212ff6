// Package store defines what the server persists and the Store interface
// that every backend (sqlite/ today, postgres/ later) implements and that
// storetest/ checks. Types here are plain Go: protobuf stops at the gRPC
// adapters.
//
// The store holds no business logic beyond the invariants that must be kept
// in one transaction (a deployment and its tasks are written together; a
// one-use join token enrolls one target; a deployment finishes when its last
// task does).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Sentinel errors; backends wrap them with the object's name.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	// ErrTokenInvalid covers unknown, revoked, expired and used-up join
	// tokens; the wrapping message says which.
	ErrTokenInvalid = errors.New("join token invalid")
	// ErrLogGap is returned when a log chunk starts after the stored end.
	ErrLogGap = errors.New("log chunk leaves a gap")
)

type Environment struct {
	Name        string
	Description string
	CreatedAt   time.Time
	// Position is the place in the lifecycle, from 1: creation order. Set by
	// the store on reads.
	Position int
	// AutoDeploy: a target that enrolls here gets the current release of
	// every application whose roles it has.
	AutoDeploy bool
	// RequiredTargets is how many targets must have run a release
	// successfully here before it is promoted further; 0 means all.
	RequiredTargets int
}

// EnvironmentUpdate changes the fields that are not nil.
type EnvironmentUpdate struct {
	Description     *string
	AutoDeploy      *bool
	RequiredTargets *int
}

// Failure policies of a rollout.
const (
	FailureHalt     = "halt"
	FailureContinue = "continue"
)

// Rollout is how a deployment moves through its targets.
type Rollout struct {
	// Window is the number of targets per wave; 0 means one wave of all.
	Window int
	// Pause is the wait between the end of a wave and the next one.
	Pause time.Duration
	// FailurePolicy is FailureHalt ("" means halt) or FailureContinue.
	FailurePolicy string
}

// VariableScope narrows where a value applies; empty fields do not narrow.
type VariableScope struct {
	Environment string
	Role        string
	Target      string // target name
}

// Variable is one scoped value of an application's variable.
type Variable struct {
	Application string
	Name        string
	// Value is the plain value of a non-sensitive variable; empty for a
	// sensitive one, whose value is only ever stored sealed.
	Value     string
	Sensitive bool
	// Sealed is the AES-GCM sealed value of a sensitive variable (the
	// server seals and opens it; the store keeps bytes).
	Sealed    []byte
	Scope     VariableScope
	UpdatedAt time.Time
	UpdatedBy string
}

type Application struct {
	Name            string
	ImageRepository string
	RunSpec         spec.RunSpec
	// Roles: the application deploys to the targets that carry all of them.
	Roles     []string
	Rollout   Rollout
	CreatedAt time.Time
}

type Release struct {
	ID              string
	Application     string
	Version         string
	ImageRepository string
	ImageTag        string
	// ImageDigest is empty until pinned (at creation or by the first pull).
	ImageDigest string
	RunSpec     spec.RunSpec
	// Variables is the application's variables when the release was
	// created, written by CreateRelease and never changed.
	Variables []Variable
	CreatedAt time.Time
}

type Target struct {
	ID            string
	Name          string
	Environment   string
	Roles         []string
	Hostname      string
	OS            string
	Arch          string
	AgentVersion  string
	DockerVersion string
	// CertFingerprint is the hex SHA-256 of the current client certificate (DER).
	CertFingerprint string
	// PrevCertFingerprint is the certificate renewed away from: still
	// accepted until the current one is first used, then cleared.
	PrevCertFingerprint string
	// CertCAHash is the SPKI hash of the CA that issued the current certificate.
	CertCAHash   string
	CertNotAfter time.Time
	EnrolledAt   time.Time
	LastSeenAt   time.Time // zero until the first session
	// RevokedAt is set once the target is revoked; a revoked target never
	// connects again.
	RevokedAt time.Time
	// Alert is the latest security alert raised on the target, at AlertAt.
	Alert   string
	AlertAt time.Time
	// Health is the agent's latest health report (the protobuf bytes of
	// tentacle.v1.HealthReport: the store does not read them), received at
	// HealthAt; nil before the first report.
	Health   []byte
	HealthAt time.Time
}

// TargetApplication is an application on one target: the newest task of it
// that succeeded there (what should run), and whether a deployment of it is
// under way there now.
type TargetApplication struct {
	TargetID    string
	Application string
	// The newest succeeded task of the application on the target, with
	// its release; empty when none succeeded (only Deploying is set).
	TaskID         string
	ReleaseID      string
	ReleaseVersion string
	ImageDigest    string
	// Deploying: a task of the application on the target is queued, sent,
	// or running (not waiting for its wave, not finished).
	Deploying bool
}

// TargetSeen is what an agent reports about itself in Hello.
type TargetSeen struct {
	Hostname      string
	OS            string
	Arch          string
	AgentVersion  string
	DockerVersion string
	At            time.Time
}

type JoinToken struct {
	ID string
	// SecretHash is the SHA-256 of the token's secret; the secret is never stored.
	SecretHash  []byte
	Environment string
	Roles       []string
	// ExpiresAt is the first instant the token is refused (a zero time is
	// always expired); it is used up once UsesCount reaches UsesAllowed.
	ExpiresAt   time.Time
	UsesAllowed int
	UsesCount   int
	CreatedBy   string
	CreatedAt   time.Time
	RevokedAt   time.Time // zero unless revoked
}

type AdminToken struct {
	ID   string
	Name string
	// Hash is the SHA-256 of the whole token; the token is never stored.
	Hash      []byte
	Role      string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: no expiry
	RevokedAt time.Time // zero unless revoked
}

// AuditRecord is one entry of the append-only audit log.
type AuditRecord struct {
	ID      int64 // set by the store, increasing
	At      time.Time
	Actor   string // "admin-token:<name>", "target:<name>", …
	Action  string // the call or event
	Object  string // what it acted on, e.g. "deployment/<id>"
	Peer    string // the caller's address
	Outcome string // "ok", "denied: …", "failed: …"
}

type DeploymentState string

const (
	DeploymentRunning   DeploymentState = "running"
	DeploymentSucceeded DeploymentState = "succeeded"
	DeploymentFailed    DeploymentState = "failed"
	DeploymentCancelled DeploymentState = "cancelled"
)

// Deployment kinds: why it was created.
const (
	KindDeploy   = "deploy"
	KindMissing  = "missing"
	KindRollback = "rollback"
	KindAuto     = "auto"
)

type Deployment struct {
	ID             string
	ReleaseID      string
	Application    string
	ReleaseVersion string
	Environment    string
	State          DeploymentState
	CreatedBy      string
	CreatedAt      time.Time
	FinishedAt     time.Time // zero while running
	Rollout        Rollout
	Kind           string // KindDeploy when empty on create
	// CancelRequestedAt is set by RequestCancelDeployment; the deployment
	// then ends cancelled once its tasks are terminal.
	CancelRequestedAt time.Time
	// DeadlineAt: tasks still queued or assigned then fail with failure
	// kind "target_unavailable" (FailOverdueTasks). Zero: no deadline.
	DeadlineAt time.Time
	// SkippedTargets names the targets left out because they had no
	// session when the deployment was created (unavailable targets: skip).
	SkippedTargets []string
}

type TaskState string

const (
	// TaskWaiting: stored, waiting for its wave; never sent.
	TaskWaiting   TaskState = "waiting"
	TaskQueued    TaskState = "queued"
	TaskAssigned  TaskState = "assigned"
	TaskAccepted  TaskState = "accepted"
	TaskPulling   TaskState = "pulling"
	TaskStarting  TaskState = "starting"
	TaskVerifying TaskState = "verifying"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
	TaskCancelled TaskState = "cancelled"
)

// Terminal reports whether no further state change can follow.
func (s TaskState) Terminal() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskCancelled
}

type Task struct {
	ID           string
	DeploymentID string
	TargetID     string
	TargetName   string // joined from targets on reads
	State        TaskState
	Message      string
	FailureKind  string // "", "image_unauthorized", "image_not_found", ...
	ImageDigest  string
	ContainerID  string
	LastEventSeq uint64
	// FinalLogBytes is the log's total length, known once the task finished
	// (-1 until then).
	FinalLogBytes int64
	// Wave is the task's wave in a rolling deployment, from 1.
	Wave int
	// Pull progress of the latest event that carried some.
	ProgressBytes      uint64
	ProgressTotalBytes uint64
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

type TaskEvent struct {
	// ID orders events across tasks; set by the store.
	ID          int64
	TaskID      string
	Sequence    uint64
	State       TaskState
	Message     string
	ImageDigest string
	ContainerID string
	FailureKind string
	// LogBytes is set on the final event: the log's total length.
	LogBytes int64
	// Pull progress; zero leaves the task's as it is.
	ProgressBytes      uint64
	ProgressTotalBytes uint64
	OccurredAt         time.Time
}

type DeploymentFilter struct {
	Application string
	Environment string
	Limit       int // 0: no limit
}

// Store is the server's persistence. All methods are safe for concurrent
// use. Errors wrap ErrNotFound, ErrConflict, ErrTokenInvalid or ErrLogGap
// where they apply; any other error is a storage failure. A method scoped
// to one object (ListReleases of an application, ListTasks of a deployment,
// a task's log, …) fails with ErrNotFound when that object does not exist.
//
// Times are kept to the microsecond and read back in UTC; a zero creation
// time (CreatedAt, EnrolledAt, TargetSeen.At) is stored as the current time.
type Store interface {
	CreateEnvironment(ctx context.Context, e Environment) error
	GetEnvironment(ctx context.Context, name string) (Environment, error)
	// ListEnvironments lists in lifecycle order.
	ListEnvironments(ctx context.Context) ([]Environment, error)
	// PreviousEnvironment returns the environment before name in the
	// lifecycle; false when name is the first. ErrNotFound for an unknown name.
	PreviousEnvironment(ctx context.Context, name string) (Environment, bool, error)
	// UpdateEnvironment applies the non-nil fields and returns the result.
	UpdateEnvironment(ctx context.Context, name string, u EnvironmentUpdate) (Environment, error)
	// ReleaseSucceededIn reports whether the release has succeeded in the
	// environment: with the environment's RequiredTargets 0, a deployment
	// of it there has succeeded; otherwise at least RequiredTargets distinct
	// targets there have a succeeded task of it.
	ReleaseSucceededIn(ctx context.Context, releaseID, environment string) (bool, error)

	CreateApplication(ctx context.Context, a Application) error
	GetApplication(ctx context.Context, name string) (Application, error)
	ListApplications(ctx context.Context) ([]Application, error)

	// CreateRelease fails with ErrConflict when (Application, Version) exists
	// and ErrNotFound when the application does not. It snapshots the
	// application's current variables into the release in the same
	// transaction (r.Variables is ignored); reads return them.
	CreateRelease(ctx context.Context, r Release) error
	GetRelease(ctx context.Context, application, version string) (Release, error)
	GetReleaseByID(ctx context.Context, id string) (Release, error)
	// ListReleases lists releases newest first; application "" lists all.
	ListReleases(ctx context.Context, application string) ([]Release, error)
	// PinReleaseDigest sets the release's digest if it has none and returns
	// the digest the release is pinned to afterwards (the earlier one wins).
	PinReleaseDigest(ctx context.Context, releaseID, digest string) (string, error)

	// EnrollTarget consumes one use of the join token (checking hash,
	// expiry and remaining uses atomically) and creates the target with the
	// token's environment and roles, in one transaction. A target whose name
	// is taken gets a numeric suffix. It returns the stored target.
	EnrollTarget(ctx context.Context, tokenID string, secretHash []byte, now time.Time, t Target) (Target, error)
	GetTarget(ctx context.Context, id string) (Target, error)
	GetTargetByName(ctx context.Context, name string) (Target, error)
	// RevokeTarget sets RevokedAt (once: revoking again keeps the first time)
	// and returns the target.
	RevokeTarget(ctx context.Context, id string, at time.Time) (Target, error)
	// RotateTargetCertificate makes newFingerprint the target's current
	// certificate and presentedFingerprint (the one the renewal was made
	// with) the previous one.
	RotateTargetCertificate(ctx context.Context, id, presentedFingerprint, newFingerprint, caHash string, notAfter time.Time) (Target, error)
	// ConfirmTargetCertificate clears the previous certificate: the current
	// one has been used.
	ConfirmTargetCertificate(ctx context.Context, id string) error
	// RaiseTargetAlert records a security alert on the target.
	RaiseTargetAlert(ctx context.Context, id, alert string, at time.Time) error
	ListTargets(ctx context.Context) ([]Target, error)
	// ListTargetsInEnvironment lists the environment's targets that are not
	// revoked: the ones a deployment gives tasks to.
	ListTargetsInEnvironment(ctx context.Context, environment string) ([]Target, error)
	// MarkTargetSeen records what an agent reports in Hello, and when.
	MarkTargetSeen(ctx context.Context, id string, seen TargetSeen) error
	// TouchTarget moves only LastSeenAt (heartbeats, a session's end), and
	// only forward: a session ending late never hides a newer one's time.
	TouchTarget(ctx context.Context, id string, at time.Time) error
	// SetTargetHealth replaces the target's health report (Health,
	// HealthAt); ErrNotFound for an unknown target.
	SetTargetHealth(ctx context.Context, id string, report []byte, at time.Time) error
	// TargetApplications lists, per target and application, the newest
	// succeeded task and whether a deployment is under way (see
	// TargetApplication), ordered by target id then application. targetID
	// "" lists every target's; an unknown target has none.
	TargetApplications(ctx context.Context, targetID string) ([]TargetApplication, error)

	// CreateJoinToken fails with ErrNotFound when the environment does not exist.
	CreateJoinToken(ctx context.Context, t JoinToken) error
	ListJoinTokens(ctx context.Context) ([]JoinToken, error)
	// RevokeJoinToken sets RevokedAt (once) and returns the token; a revoked
	// token enrolls nothing (EnrollTarget fails with ErrTokenInvalid, "revoked").
	RevokeJoinToken(ctx context.Context, id string, at time.Time) (JoinToken, error)

	CreateAdminToken(ctx context.Context, t AdminToken) error
	GetAdminTokenByHash(ctx context.Context, hash []byte) (AdminToken, error)
	CountAdminTokens(ctx context.Context) (int, error)
	// ListAdminTokens lists every admin token, revoked ones included, oldest first.
	ListAdminTokens(ctx context.Context) ([]AdminToken, error)
	// RevokeAdminToken revokes by id, or by name when no id matches; it sets
	// RevokedAt (once) and returns the token. GetAdminTokenByHash still
	// returns revoked tokens: the caller refuses them.
	RevokeAdminToken(ctx context.Context, idOrName string, at time.Time) (AdminToken, error)

	// AppendAudit adds a record; the audit log has no update or delete, and
	// the backend refuses them even through SQL.
	AppendAudit(ctx context.Context, r AuditRecord) error
	// ListAudit lists records at or after since (zero: all), oldest first;
	// with limit > 0 only the newest limit of them.
	ListAudit(ctx context.Context, since time.Time, limit int) ([]AuditRecord, error)

	// SetVariable creates or replaces the value of (Application, Name,
	// Scope); ErrNotFound when the application does not exist.
	SetVariable(ctx context.Context, v Variable) error
	// ListVariables lists the application's variables by name, then scope.
	ListVariables(ctx context.Context, application string) ([]Variable, error)
	// DeleteVariable removes one scoped value; ErrNotFound if absent.
	DeleteVariable(ctx context.Context, application, name string, scope VariableScope) error

	// CreateDeployment writes the deployment and its tasks in one
	// transaction. Tasks may be created terminal (failed at once); when
	// every task is, the deployment finishes in the same transaction, as
	// it would when its last task ended.
	CreateDeployment(ctx context.Context, d Deployment, tasks []Task) error
	GetDeployment(ctx context.Context, id string) (Deployment, error)
	// ListDeployments lists newest first.
	ListDeployments(ctx context.Context, f DeploymentFilter) ([]Deployment, error)
	// ListRunningDeployments lists the deployments still running, oldest first.
	ListRunningDeployments(ctx context.Context) ([]Deployment, error)
	// StartWave moves the deployment's waiting tasks of the wave to queued
	// and returns them; tasks in other states are left alone.
	StartWave(ctx context.Context, deploymentID string, wave int) ([]Task, error)
	// HaltDeployment moves every waiting and queued task of the deployment
	// to cancelled with the message and failure kind "halted", and returns
	// them; when no task is left running the deployment finishes in the
	// same transaction.
	HaltDeployment(ctx context.Context, deploymentID, message string) ([]Task, error)
	// FailOverdueTasks fails every waiting, queued or assigned task of a
	// running deployment whose DeadlineAt is at or before now, with failure
	// kind "target_unavailable" and a message naming the target and the
	// deadline; deployments whose last task that was finish in the same
	// transaction. It returns the tasks it failed.
	FailOverdueTasks(ctx context.Context, now time.Time) ([]Task, error)
	// RequestCancelDeployment sets CancelRequestedAt (once) on a running
	// deployment and returns it; a finished one is returned unchanged.
	RequestCancelDeployment(ctx context.Context, deploymentID string, at time.Time) (Deployment, error)

	GetTask(ctx context.Context, id string) (Task, error)
	// ListTasks lists a deployment's tasks ordered by target name;
	// deploymentID "" lists every task, newest first.
	ListTasks(ctx context.Context, deploymentID string) ([]Task, error)
	// PendingTasksForTarget lists the target's queued and assigned tasks,
	// oldest first: what must be (re)sent to its agent.
	PendingTasksForTarget(ctx context.Context, targetID string) ([]Task, error)
	// MarkTaskAssigned moves a queued task to assigned; other states are left alone.
	MarkTaskAssigned(ctx context.Context, taskID string) error
	// MarkTaskAccepted moves a queued or assigned task to accepted; other
	// states are left alone (an accept can arrive after later events).
	MarkTaskAccepted(ctx context.Context, taskID string) error
	// AppendTaskEvent stores the event once per (TaskID, Sequence) and
	// reports whether it was new. The task takes the event's state, message,
	// digest, container and failure kind only when the sequence is above the
	// task's last one and the task is not already terminal; an empty State,
	// ImageDigest or ContainerID leaves the task's as it is, and a terminal
	// event's LogBytes becomes FinalLogBytes. When the last
	// task of a deployment becomes terminal the deployment finishes in the
	// same transaction: cancelled if a cancel was requested, succeeded if
	// every task succeeded, else failed.
	AppendTaskEvent(ctx context.Context, e TaskEvent) (bool, error)
	// ListDeploymentEvents lists the events of a deployment's tasks with ID
	// above afterID, in ID order.
	ListDeploymentEvents(ctx context.Context, deploymentID string, afterID int64) ([]TaskEvent, error)

	// AppendTaskLog stores data at offset of the task's log. Bytes already
	// stored are skipped (a resent chunk is harmless); a chunk starting past
	// the stored end fails with ErrLogGap. It returns the stored length.
	AppendTaskLog(ctx context.Context, taskID string, offset uint64, data []byte) (uint64, error)
	// ReadTaskLog returns up to max bytes from offset (fewer at the end).
	ReadTaskLog(ctx context.Context, taskID string, offset uint64, max int) ([]byte, error)
	TaskLogSize(ctx context.Context, taskID string) (uint64, error)

	Close() error

	// CountTasksByState counts every stored task by state, for the
	// server's metrics; states no task is in are absent.
	CountTasksByState(ctx context.Context) (map[TaskState]int, error)
}
