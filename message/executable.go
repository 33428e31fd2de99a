package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"unicode/utf8"
)

// Limits of executable content (aleph-message).
const (
	MaxMetadataEntries    = 256
	MaxAuthorizedKeys     = 256
	MaxAuthorizedKeyLen   = 8192
	MaxVariables          = 256
	MaxVariableKeyLen     = 128
	MaxVariableValueLen   = 4096
	MaxVolumes            = 256
	MaxReplacesLen        = 128
	MaxVCPUs              = 256
	MaxMemoryMiB          = 1_048_576
	MaxSeconds            = 315_360_000
	MaxEphemeralMiB       = 1000
	MaxPersistentMiB      = 1_953_125 // 2,048 GB
	MaxVolumeTextLen      = 256
	MaxAddressRegexLen    = 256
	DefaultVCPUs          = 1
	DefaultMemoryMiB      = 128
	DefaultSeconds        = 1
	ProgramTypeVMFunction = "vm-function"
)

func valueOf(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// ExecutableHead holds the executable fields PROGRAM and INSTANCE share that come
// before environment in aleph-message's field order.
type ExecutableHead struct {
	AllowAmend     bool              `json:"allow_amend" aleph:"required"`
	Metadata       json.RawMessage   `json:"metadata,omitempty"`
	AuthorizedKeys []string          `json:"authorized_keys,omitempty"`
	Variables      map[string]string `json:"variables,omitempty"`
}

// ExecutableTail holds the executable fields that come after environment in
// aleph-message's field order.
type ExecutableTail struct {
	Resources    MachineResources  `json:"resources" aleph:"required"`
	Payment      *Payment          `json:"payment,omitempty"`
	Requirements *HostRequirements `json:"requirements,omitempty"`
	Volumes      []MachineVolume   `json:"volumes" aleph:"nonnull"`
	Replaces     *string           `json:"replaces,omitempty"`
}

func (e *ExecutableHead) validateHead() error {
	if m := e.Metadata; m != nil {
		// Upstream types metadata as a dict, but mainnet holds PROGRAMs with
		// "metadata": [] that were accepted; any JSON is kept, and an object is capped.
		if m[0] == '{' {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(m, &obj); err == nil && len(obj) > MaxMetadataEntries {
				return Errorf(CodeInvalidFormat, "content.metadata", "%d entries, over the limit of %d", len(obj), MaxMetadataEntries)
			}
		}
	}
	if len(e.AuthorizedKeys) > MaxAuthorizedKeys {
		return Errorf(CodeInvalidFormat, "content.authorized_keys", "%d keys, over the limit of %d", len(e.AuthorizedKeys), MaxAuthorizedKeys)
	}
	for i, k := range e.AuthorizedKeys {
		if utf8.RuneCountInString(k) > MaxAuthorizedKeyLen {
			return Errorf(CodeInvalidFormat, fmt.Sprintf("content.authorized_keys[%d]", i), "over %d characters", MaxAuthorizedKeyLen)
		}
	}
	if len(e.Variables) > MaxVariables {
		return Errorf(CodeInvalidFormat, "content.variables", "%d entries, over the limit of %d", len(e.Variables), MaxVariables)
	}
	for k, v := range e.Variables {
		if utf8.RuneCountInString(k) > MaxVariableKeyLen {
			return Errorf(CodeInvalidFormat, "content.variables", "key %q over %d characters", truncate(k, 40), MaxVariableKeyLen)
		}
		if utf8.RuneCountInString(v) > MaxVariableValueLen {
			return Errorf(CodeInvalidFormat, "content.variables."+truncate(k, 64), "over %d characters", MaxVariableValueLen)
		}
	}
	return nil
}

func (t *ExecutableTail) setDefaults() {
	t.Volumes = []MachineVolume{}
	t.Resources.setDefaults()
}

func (t *ExecutableTail) validateTail() error {
	if err := t.Resources.validate("content.resources"); err != nil {
		return err
	}
	if t.Payment != nil {
		if err := t.Payment.validate("content.payment"); err != nil {
			return err
		}
	}
	if t.Requirements != nil {
		if err := t.Requirements.validate("content.requirements"); err != nil {
			return err
		}
	}
	if len(t.Volumes) > MaxVolumes {
		return Errorf(CodeInvalidFormat, "content.volumes", "%d volumes, over the limit of %d", len(t.Volumes), MaxVolumes)
	}
	for i := range t.Volumes {
		if err := t.Volumes[i].validate(fmt.Sprintf("content.volumes[%d]", i)); err != nil {
			return err
		}
	}
	if t.Replaces != nil && utf8.RuneCountInString(*t.Replaces) > MaxReplacesLen {
		return Errorf(CodeInvalidFormat, "content.replaces", "over %d characters", MaxReplacesLen)
	}
	return nil
}

// MachineResources are the resources a VM gets.
type MachineResources struct {
	VCPUs          int           `json:"vcpus"`
	Memory         int           `json:"memory"`
	Seconds        int           `json:"seconds"`
	PublishedPorts []PortMapping `json:"published_ports,omitempty"`
}

func (r *MachineResources) setDefaults() {
	r.VCPUs, r.Memory, r.Seconds = DefaultVCPUs, DefaultMemoryMiB, DefaultSeconds
}

func (r *MachineResources) validate(path string) error {
	if r.VCPUs < 1 || r.VCPUs > MaxVCPUs {
		return Errorf(CodeInvalidFormat, path+".vcpus", "%d is out of range 1 to %d", r.VCPUs, MaxVCPUs)
	}
	if r.Memory < 1 || r.Memory > MaxMemoryMiB {
		return Errorf(CodeInvalidFormat, path+".memory", "%d MiB is out of range 1 to %d", r.Memory, MaxMemoryMiB)
	}
	if r.Seconds < 1 || r.Seconds > MaxSeconds {
		return Errorf(CodeInvalidFormat, path+".seconds", "%d is out of range 1 to %d", r.Seconds, MaxSeconds)
	}
	for i, p := range r.PublishedPorts {
		pp := fmt.Sprintf("%s.published_ports[%d]", path, i)
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return Errorf(CodeInvalidFormat, pp+".protocol", "must be tcp or udp, got %q", truncate(p.Protocol, 20))
		}
		if p.Port < 1 || p.Port > 65535 {
			return Errorf(CodeInvalidFormat, pp+".port", "%d is out of range 1 to 65535", p.Port)
		}
	}
	return nil
}

// PortMapping is a port the VM publishes.
type PortMapping struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port" aleph:"required"`
}

func (p *PortMapping) setDefaults() { p.Protocol = "tcp" }

// HostRequirements restrict which compute node may run the VM.
type HostRequirements struct {
	CPU  *CPURequirements  `json:"cpu,omitempty"`
	Node *NodeRequirements `json:"node,omitempty"`
	GPU  []GPUProperties   `json:"gpu,omitempty"`
}

// CPURequirements restrict the CPU.
type CPURequirements struct {
	Architecture string   `json:"architecture,omitempty"`
	Vendor       string   `json:"vendor,omitempty"`
	Features     []string `json:"features,omitempty"`
}

// NodeRequirements restrict the node.
type NodeRequirements struct {
	Owner              string `json:"owner,omitempty"`
	AddressRegex       string `json:"address_regex,omitempty"`
	NodeHash           string `json:"node_hash,omitempty"`
	TermsAndConditions string `json:"terms_and_conditions,omitempty"`
}

// GPUProperties name a GPU the VM needs.
type GPUProperties struct {
	Vendor      string `json:"vendor" aleph:"required"`
	DeviceName  string `json:"device_name" aleph:"required"`
	DeviceClass string `json:"device_class" aleph:"required"`
	DeviceID    string `json:"device_id" aleph:"required"`
}

func (h *HostRequirements) validate(path string) error {
	if c := h.CPU; c != nil && c.Architecture != "" && c.Architecture != "x86_64" && c.Architecture != "arm64" {
		return Errorf(CodeInvalidFormat, path+".cpu.architecture", "must be x86_64 or arm64, got %q", truncate(c.Architecture, 20))
	}
	if n := h.Node; n != nil {
		if n.AddressRegex != "" {
			if utf8.RuneCountInString(n.AddressRegex) > MaxAddressRegexLen {
				return Errorf(CodeInvalidFormat, path+".node.address_regex", "over %d characters", MaxAddressRegexLen)
			}
			if _, err := regexp.Compile(n.AddressRegex); err != nil {
				return Errorf(CodeInvalidFormat, path+".node.address_regex", "does not compile: %v", err)
			}
		}
		if n.NodeHash != "" && !IsItemHash(n.NodeHash) {
			return Errorf(CodeInvalidFormat, path+".node.node_hash", "not an item hash")
		}
		if n.TermsAndConditions != "" && !IsItemHash(n.TermsAndConditions) {
			return Errorf(CodeInvalidFormat, path+".node.terms_and_conditions", "not an item hash")
		}
	}
	for i, g := range h.GPU {
		if g.DeviceClass != "0300" && g.DeviceClass != "0302" {
			return Errorf(CodeInvalidFormat, fmt.Sprintf("%s.gpu[%d].device_class", path, i), "must be 0300 or 0302, got %q", truncate(g.DeviceClass, 20))
		}
	}
	return nil
}

func (h *HostRequirements) nodeHash() string {
	if h == nil || h.Node == nil {
		return ""
	}
	return h.Node.NodeHash
}

// VolumeParent names the STORE a volume starts from.
type VolumeParent struct {
	Ref       string `json:"ref" aleph:"required"`
	UseLatest bool   `json:"use_latest"`
}

func (p *VolumeParent) setDefaults() { p.UseLatest = true }

// ImmutableVolume mounts a STORE read-only.
type ImmutableVolume struct {
	Comment   string `json:"comment,omitempty"`
	Mount     string `json:"mount,omitempty"`
	Ref       string `json:"ref" aleph:"required"`
	UseLatest bool   `json:"use_latest"`
}

func (v *ImmutableVolume) setDefaults() { v.UseLatest = true }

// EphemeralVolume is a scratch disk that lives as long as the VM.
type EphemeralVolume struct {
	Comment   string `json:"comment,omitempty"`
	Mount     string `json:"mount,omitempty"`
	Ephemeral bool   `json:"ephemeral" aleph:"required"`
	SizeMiB   int    `json:"size_mib" aleph:"required,strict"`
}

// PersistentVolume is a disk kept across restarts, on the host or in a STORE.
type PersistentVolume struct {
	Comment     string        `json:"comment,omitempty"`
	Mount       string        `json:"mount,omitempty"`
	Parent      *VolumeParent `json:"parent,omitempty"`
	Persistence string        `json:"persistence,omitempty"`
	Name        string        `json:"name,omitempty"`
	SizeMiB     int           `json:"size_mib" aleph:"required,strict"`
}

// MachineVolume is one of the three volume kinds, told apart by shape: "ephemeral"
// makes an ephemeral volume, "ref" an immutable one, anything else a persistent one.
type MachineVolume struct {
	Immutable  *ImmutableVolume
	Ephemeral  *EphemeralVolume
	Persistent *PersistentVolume
}

func (v *MachineVolume) decodeSchema(path string, raw []byte) error {
	if raw[0] != '{' {
		return Errorf(CodeInvalidFormat, path, "must be an object")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return Errorf(CodeInvalidFormat, path, "invalid object")
	}
	*v = MachineVolume{}
	if _, ok := keys["ephemeral"]; ok {
		v.Ephemeral = &EphemeralVolume{}
		return decodeStrict(path, raw, v.Ephemeral)
	}
	if _, ok := keys["ref"]; ok {
		v.Immutable = &ImmutableVolume{}
		return decodeStrict(path, raw, v.Immutable)
	}
	v.Persistent = &PersistentVolume{}
	return decodeStrict(path, raw, v.Persistent)
}

// MarshalJSON writes the volume that is set.
func (v MachineVolume) MarshalJSON() ([]byte, error) {
	switch {
	case v.Ephemeral != nil:
		return json.Marshal(v.Ephemeral)
	case v.Immutable != nil:
		return json.Marshal(v.Immutable)
	case v.Persistent != nil:
		return json.Marshal(v.Persistent)
	}
	return []byte("null"), nil
}

// Mount returns the volume's mount point.
func (v *MachineVolume) Mount() string {
	switch {
	case v.Ephemeral != nil:
		return v.Ephemeral.Mount
	case v.Immutable != nil:
		return v.Immutable.Mount
	case v.Persistent != nil:
		return v.Persistent.Mount
	}
	return ""
}

func (v *MachineVolume) validate(path string) error {
	var comment, mount string
	switch {
	case v.Ephemeral != nil:
		e := v.Ephemeral
		comment, mount = e.Comment, e.Mount
		if !e.Ephemeral {
			return Errorf(CodeInvalidFormat, path+".ephemeral", "must be true")
		}
		if e.SizeMiB < 1 || e.SizeMiB > MaxEphemeralMiB {
			return Errorf(CodeInvalidFormat, path+".size_mib", "%d is out of range 1 to %d", e.SizeMiB, MaxEphemeralMiB)
		}
	case v.Immutable != nil:
		comment, mount = v.Immutable.Comment, v.Immutable.Mount
		if !IsItemHash(v.Immutable.Ref) {
			return Errorf(CodeInvalidFormat, path+".ref", "not an item hash")
		}
	case v.Persistent != nil:
		p := v.Persistent
		comment, mount = p.Comment, p.Mount
		if p.Persistence != "" && p.Persistence != "host" && p.Persistence != "store" {
			return Errorf(CodeInvalidFormat, path+".persistence", "must be host or store, got %q", truncate(p.Persistence, 20))
		}
		if utf8.RuneCountInString(p.Name) > MaxVolumeTextLen {
			return Errorf(CodeInvalidFormat, path+".name", "over %d characters", MaxVolumeTextLen)
		}
		if p.SizeMiB < 1 || p.SizeMiB > MaxPersistentMiB {
			return Errorf(CodeInvalidFormat, path+".size_mib", "%d is out of range 1 to %d", p.SizeMiB, MaxPersistentMiB)
		}
		if p.Parent != nil && !IsItemHash(p.Parent.Ref) {
			return Errorf(CodeInvalidFormat, path+".parent.ref", "not an item hash")
		}
	default:
		return Errorf(CodeInvalidFormat, path, "empty volume")
	}
	if utf8.RuneCountInString(comment) > MaxVolumeTextLen {
		return Errorf(CodeInvalidFormat, path+".comment", "over %d characters", MaxVolumeTextLen)
	}
	if utf8.RuneCountInString(mount) > MaxVolumeTextLen {
		return Errorf(CodeInvalidFormat, path+".mount", "over %d characters", MaxVolumeTextLen)
	}
	return nil
}

// ProgramContent is the content of a PROGRAM: a function run on demand (HTTP or
// message triggers) or kept running (on.persistent).
type ProgramContent struct {
	BaseContent
	Type string `json:"type" aleph:"required"`
	ExecutableHead
	Environment FunctionEnvironment `json:"environment" aleph:"required"`
	ExecutableTail
	Code    CodeContent      `json:"code" aleph:"required"`
	Runtime FunctionRuntime  `json:"runtime" aleph:"required"`
	Data    *DataContent     `json:"data,omitempty"`
	Export  *Export          `json:"export,omitempty"`
	On      FunctionTriggers `json:"on" aleph:"required"`
}

// Validate checks the PROGRAM rules.
func (c *ProgramContent) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := c.validateHead(); err != nil {
		return err
	}
	if c.Type != ProgramTypeVMFunction {
		return Errorf(CodeInvalidFormat, "content.type", "must be %q, got %q", ProgramTypeVMFunction, truncate(c.Type, 40))
	}
	if err := c.validateTail(); err != nil {
		return err
	}
	if err := c.Code.validate("content.code"); err != nil {
		return err
	}
	if !IsItemHash(c.Runtime.Ref) {
		return Errorf(CodeInvalidFormat, "content.runtime.ref", "not an item hash")
	}
	if c.Data != nil {
		if err := checkEncoding("content.data.encoding", c.Data.Encoding); err != nil {
			return err
		}
		if !IsItemHash(c.Data.Ref) {
			return Errorf(CodeInvalidFormat, "content.data.ref", "not an item hash")
		}
	}
	if c.Export != nil {
		if err := checkEncoding("content.export.encoding", c.Export.Encoding); err != nil {
			return err
		}
	}
	for i, s := range c.On.Message {
		if len(s) > MaxSubscriptionKey {
			return Errorf(CodeInvalidFormat, fmt.Sprintf("content.on.message[%d]", i), "%d keys, over the limit of %d", len(s), MaxSubscriptionKey)
		}
	}
	return nil
}

// FunctionEnvironment sets what a program may reach.
type FunctionEnvironment struct {
	Reproducible bool `json:"reproducible"`
	Internet     bool `json:"internet"`
	AlephAPI     bool `json:"aleph_api"`
	SharedCache  bool `json:"shared_cache"`
}

// Code encodings.
const (
	EncodingPlain    = "plain"
	EncodingZip      = "zip"
	EncodingSquashfs = "squashfs"
)

func checkEncoding(path, e string) error {
	if e != EncodingPlain && e != EncodingZip && e != EncodingSquashfs {
		return Errorf(CodeInvalidFormat, path, "must be plain, zip or squashfs, got %q", truncate(e, 20))
	}
	return nil
}

// CodeContent names the program's code.
type CodeContent struct {
	Encoding   string   `json:"encoding" aleph:"required"`
	Entrypoint string   `json:"entrypoint" aleph:"required"`
	Ref        string   `json:"ref" aleph:"required"`
	Interface  string   `json:"interface,omitempty"`
	Args       []string `json:"args,omitempty"`
	UseLatest  bool     `json:"use_latest"`
}

// Program interfaces.
const (
	InterfaceASGI   = "asgi"
	InterfaceBinary = "binary"
)

// EffectiveInterface returns the interface, inferred when absent: asgi if the
// entrypoint looks like "module:app", binary otherwise.
func (c *CodeContent) EffectiveInterface() string {
	if c.Interface != "" {
		return c.Interface
	}
	if bytes.ContainsRune([]byte(c.Entrypoint), ':') {
		return InterfaceASGI
	}
	return InterfaceBinary
}

func (c *CodeContent) validate(path string) error {
	if err := checkEncoding(path+".encoding", c.Encoding); err != nil {
		return err
	}
	if !IsItemHash(c.Ref) {
		return Errorf(CodeInvalidFormat, path+".ref", "not an item hash")
	}
	if c.Interface != "" && c.Interface != InterfaceASGI && c.Interface != InterfaceBinary {
		return Errorf(CodeInvalidFormat, path+".interface", "must be asgi or binary, got %q", truncate(c.Interface, 20))
	}
	return nil
}

// FunctionRuntime names the root filesystem with the interpreter.
type FunctionRuntime struct {
	Ref       string `json:"ref" aleph:"required"`
	UseLatest bool   `json:"use_latest"`
	Comment   string `json:"comment" aleph:"required"`
}

func (r *FunctionRuntime) setDefaults() { r.UseLatest = true }

// DataContent is data mounted into the program.
type DataContent struct {
	Encoding  string `json:"encoding" aleph:"required"`
	Mount     string `json:"mount" aleph:"required"`
	Ref       string `json:"ref" aleph:"required"`
	UseLatest bool   `json:"use_latest"`
}

// Export is where the program's output data goes.
type Export struct {
	Encoding string `json:"encoding" aleph:"required"`
	Mount    string `json:"mount" aleph:"required"`
}

// FunctionTriggers say when a program runs.
type FunctionTriggers struct {
	HTTP       bool           `json:"http" aleph:"required"`
	Message    []Subscription `json:"message,omitempty"`
	Persistent *bool          `json:"persistent,omitempty"`
}

// Subscription is a message filter that triggers a program; any keys are allowed.
type Subscription map[string]json.RawMessage

// InstanceContent is the content of an INSTANCE: a persistent VM with its own disk.
type InstanceContent struct {
	BaseContent
	ExecutableHead
	Environment InstanceEnvironment `json:"environment" aleph:"required"`
	ExecutableTail
	RootFS RootFSVolume `json:"rootfs" aleph:"required"`
}

// InstanceEnvironment sets the instance's hypervisor and what it may reach.
type InstanceEnvironment struct {
	Internet         bool              `json:"internet"`
	AlephAPI         bool              `json:"aleph_api"`
	Hypervisor       *string           `json:"hypervisor,omitempty"`
	TrustedExecution *TrustedExecution `json:"trusted_execution,omitempty"`
	Reproducible     bool              `json:"reproducible"`
	SharedCache      bool              `json:"shared_cache"`
}

// Hypervisors.
const (
	HypervisorQEMU        = "qemu"
	HypervisorFirecracker = "firecracker"
)

// TrustedExecution asks for a confidential VM (AMD SEV).
type TrustedExecution struct {
	Firmware string `json:"firmware,omitempty"`
	Policy   int64  `json:"policy"`
}

func (t *TrustedExecution) setDefaults() { t.Policy = 1 }

// RootFSVolume is the instance's root disk, copied from a parent STORE.
type RootFSVolume struct {
	Parent      VolumeParent `json:"parent" aleph:"required"`
	Persistence string       `json:"persistence" aleph:"required"`
	SizeMiB     int          `json:"size_mib" aleph:"required,strict"`
}

// Confidential reports whether the instance asks for trusted execution.
func (c *InstanceContent) Confidential() bool { return c.Environment.TrustedExecution != nil }

// Validate checks the INSTANCE rules, cross-field ones included.
func (c *InstanceContent) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := c.validateHead(); err != nil {
		return err
	}
	if err := c.validateTail(); err != nil {
		return err
	}
	env := c.Environment
	hyper := HypervisorQEMU
	if env.Hypervisor != nil {
		hyper = *env.Hypervisor
		if hyper != HypervisorQEMU && hyper != HypervisorFirecracker {
			return Errorf(CodeInvalidFormat, "content.environment.hypervisor", "must be qemu or firecracker, got %q", truncate(hyper, 20))
		}
	}
	if te := env.TrustedExecution; te != nil {
		if hyper != HypervisorQEMU {
			return Errorf(CodeInvalidFormat, "content.environment.trusted_execution", "needs the qemu hypervisor")
		}
		if te.Firmware != "" && !IsItemHash(te.Firmware) {
			return Errorf(CodeInvalidFormat, "content.environment.trusted_execution.firmware", "not an item hash")
		}
	}
	r := c.RootFS
	if !IsItemHash(r.Parent.Ref) {
		return Errorf(CodeInvalidFormat, "content.rootfs.parent.ref", "not an item hash")
	}
	if r.Persistence != "host" && r.Persistence != "store" {
		return Errorf(CodeInvalidFormat, "content.rootfs.persistence", "must be host or store, got %q", truncate(r.Persistence, 20))
	}
	if r.SizeMiB < 1 || r.SizeMiB > MaxPersistentMiB {
		return Errorf(CodeInvalidFormat, "content.rootfs.size_mib", "%d is out of range 1 to %d", r.SizeMiB, MaxPersistentMiB)
	}
	if req := c.Requirements; req != nil {
		nodeHash := req.nodeHash()
		if c.Payment != nil && (c.Payment.Type == PaymentSuperfluid || c.Payment.Type == PaymentCredit) && nodeHash == "" {
			return Errorf(CodeInvalidFormat, "content.requirements.node.node_hash", "required for %s payment", c.Payment.Type)
		}
		if len(req.GPU) > 0 {
			if nodeHash == "" {
				return Errorf(CodeInvalidFormat, "content.requirements.node.node_hash", "required with a GPU")
			}
			if hyper != HypervisorQEMU {
				return Errorf(CodeInvalidFormat, "content.environment.hypervisor", "a GPU needs the qemu hypervisor")
			}
		}
		if req.Node != nil && req.Node.TermsAndConditions != "" {
			if nodeHash == "" {
				return Errorf(CodeInvalidFormat, "content.requirements.node.node_hash", "required with terms_and_conditions")
			}
			paid := c.Payment != nil && (c.Payment.Type == PaymentSuperfluid || c.Payment.Type == PaymentCredit)
			if !paid && !c.Confidential() {
				return Errorf(CodeInvalidFormat, "content.requirements.node.terms_and_conditions", "only for pay-as-you-go, credit or confidential instances")
			}
		}
	}
	return nil
}
