package message

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/pyjson"
)

const (
	h1 = "5f31b0706f59404fad3d0bff97ef89ddf24da4761608ea0646329362c662ba51"
	h2 = "7eb2eca2378ea8855336ed76c8b26219f1cb90234d04441de9cf8cb1c649d003"
)

// programJSON is the aleph-message machine.json sample (§2.10), with full hashes.
var programJSON = `{"type":"vm-function","address":"0x9319Ad3B7A8E0eE24f2E639c40D8eD124C5520Ba","allow_amend":false,
 "code":{"encoding":"zip","entrypoint":"example_fastapi_2:app","ref":"` + h2 + `","use_latest":false},
 "on":{"http":true,"persistent":false,"message":[{"sender":"0xB31B787AdA86c6067701d4C0A250c89C7f1f29A5","channel":"TEST"}]},
 "environment":{"reproducible":true,"internet":false,"aleph_api":false,"shared_cache":false},
 "resources":{"vcpus":1,"memory":128,"seconds":30},
 "runtime":{"ref":"` + h1 + `","use_latest":false,"comment":"Aleph Alpine Linux with Python 3.8"},
 "volumes":[{"mount":"/opt/venv","ref":"` + h1 + `","use_latest":false},
            {"mount":"/var/cache","ephemeral":true,"size_mib":5},
            {"mount":"/var/lib/sqlite","name":"sqlite-data","persistence":"host","size_mib":10}],
 "time":1619017773.8950517}`

var instanceJSON = `{"address":"0x238224C744F4b90b4494516e074D2676ECfC6803","time":1700000000.5,"allow_amend":false,
 "metadata":{"name":"vm"},"authorized_keys":["ssh-ed25519 AAAA test"],
 "environment":{"internet":true,"aleph_api":true,"hypervisor":"qemu","reproducible":false,"shared_cache":false},
 "resources":{"vcpus":2,"memory":4096,"seconds":30},
 "payment":{"chain":"BASE","receiver":"0xA","type":"superfluid"},
 "requirements":{"node":{"node_hash":"` + h1 + `"},"gpu":[{"vendor":"NVIDIA","device_name":"RTX","device_class":"0300","device_id":"10de:2684"}]},
 "volumes":[],
 "rootfs":{"parent":{"ref":"` + h2 + `","use_latest":true},"persistence":"host","size_mib":20480}}`

func mustParse(t *testing.T, typ Type, raw string) Content {
	t.Helper()
	c, err := ParseContent(typ, []byte(raw))
	if err != nil {
		t.Fatalf("ParseContent(%s): %v", typ, err)
	}
	return c
}

func TestProgramContent(t *testing.T) {
	p := mustParse(t, TypeProgram, programJSON).(*ProgramContent)
	if p.Code.EffectiveInterface() != InterfaceASGI || p.Resources.Seconds != 30 || len(p.Volumes) != 3 {
		t.Fatalf("unexpected program: %+v", p)
	}
	if p.Volumes[0].Immutable == nil || p.Volumes[1].Ephemeral == nil || p.Volumes[2].Persistent == nil {
		t.Errorf("volumes not told apart: %+v", p.Volumes)
	}
	if p.Runtime.UseLatest || p.On.Persistent == nil || *p.On.Persistent || len(p.On.Message) != 1 {
		t.Errorf("defaults or triggers wrong: %+v %+v", p.Runtime, p.On)
	}
	// Defaults apply when fields are absent.
	min := `{"type":"vm-function","address":"0xA","time":1.0,"allow_amend":true,
	  "code":{"encoding":"plain","entrypoint":"run.sh","ref":"` + h1 + `"},
	  "on":{"http":true},"environment":{},"resources":{},
	  "runtime":{"ref":"` + h2 + `","comment":""}}`
	m := mustParse(t, TypeProgram, min).(*ProgramContent)
	if m.Resources.VCPUs != 1 || m.Resources.Memory != 128 || m.Resources.Seconds != 1 ||
		!m.Runtime.UseLatest || m.Code.UseLatest || m.Volumes == nil || m.Code.EffectiveInterface() != InterfaceBinary {
		t.Errorf("defaults not applied: %+v", m)
	}
}

func TestInstanceContent(t *testing.T) {
	in := mustParse(t, TypeInstance, instanceJSON).(*InstanceContent)
	if in.RootFS.SizeMiB != 20480 || !in.Payment.IsPAYG() || in.Confidential() {
		t.Errorf("unexpected instance: %+v", in)
	}
	conf := strings.Replace(instanceJSON, `"hypervisor":"qemu"`, `"hypervisor":"qemu","trusted_execution":{"firmware":"`+h1+`"}`, 1)
	c := mustParse(t, TypeInstance, conf).(*InstanceContent)
	if !c.Confidential() || c.Environment.TrustedExecution.Policy != 1 {
		t.Errorf("trusted execution default policy: %+v", c.Environment.TrustedExecution)
	}
}

func TestContentRejects(t *testing.T) {
	prog := func(old, new string) string {
		if !strings.Contains(programJSON, old) {
			panic("bad test edit: " + old)
		}
		return strings.Replace(programJSON, old, new, 1)
	}
	inst := func(old, new string) string {
		if !strings.Contains(instanceJSON, old) {
			panic("bad test edit: " + old)
		}
		return strings.Replace(instanceJSON, old, new, 1)
	}
	forget := func(n int, field string) string {
		hs := make([]string, n)
		for i := range hs {
			hs[i] = `"` + h1 + `"`
		}
		return `{"address":"0xA","time":1.0,"hashes":[],"` + field + `":[` + strings.Join(hs, ",") + `]}`
	}
	tests := []struct {
		name  string
		typ   Type
		raw   string
		field string
	}{
		{"post missing type", TypePost, `{"address":"0xA","time":1.0}`, "content.type"},
		{"post ref number", TypePost, `{"address":"0xA","time":1.0,"type":"amend","ref":5}`, "content.ref"},
		{"post ref object without hash", TypePost, `{"address":"0xA","time":1.0,"type":"amend","ref":{"chain":"ETH"}}`, "content.ref.item_hash"},
		{"aggregate content not object", TypeAggregate, `{"address":"0xA","time":1.0,"key":"k","content":[1]}`, "content.content"},
		{"aggregate missing key", TypeAggregate, `{"address":"0xA","time":1.0,"content":{}}`, "content.key"},
		{"aggregate key object extra", TypeAggregate, `{"address":"0xA","time":1.0,"key":{"name":"k","x":1},"content":{}}`, "content.key.x"},
		{"store bad item_type", TypeStore, `{"address":"0xA","time":1.0,"item_type":"inline","item_hash":"` + h1 + `"}`, "content.item_type"},
		{"store type vs hash", TypeStore, `{"address":"0xA","time":1.0,"item_type":"ipfs","item_hash":"` + h1 + `"}`, "content.item_type"},
		{"store superfluid", TypeStore, `{"address":"0xA","time":1.0,"item_type":"storage","item_hash":"` + h1 + `","payment":{"type":"superfluid"}}`, "content.payment.type"},
		{"forget too many hashes", TypeForget, forget(MaxForgetTargets+1, "aggregates"), "content.aggregates"},
		{"forget missing hashes", TypeForget, `{"address":"0xA","time":1.0}`, "content.hashes"},
		{"forget null hashes", TypeForget, `{"address":"0xA","time":1.0,"hashes":null}`, "content.hashes"},
		{"forget bad hash", TypeForget, `{"address":"0xA","time":1.0,"hashes":["nope"]}`, "content.hashes[0]"},
		{"forget long reason", TypeForget, `{"address":"0xA","time":1.0,"hashes":[],"reason":"` + strings.Repeat("r", MaxForgetReason+1) + `"}`, "content.reason"},
		{"program wrong type", TypeProgram, prog(`"type":"vm-function"`, `"type":"vm"`), "content.type"},
		{"program vcpus zero", TypeProgram, prog(`"vcpus":1`, `"vcpus":0`), "content.resources.vcpus"},
		{"program vcpus string", TypeProgram, prog(`"vcpus":1`, `"vcpus":"1"`), "content.resources.vcpus"},
		{"program memory huge", TypeProgram, prog(`"memory":128`, `"memory":2000000`), "content.resources.memory"},
		{"program extra nested", TypeProgram, prog(`"seconds":30`, `"seconds":30,"gpu":1`), "content.resources.gpu"},
		{"program bad encoding", TypeProgram, prog(`"encoding":"zip"`, `"encoding":"tar"`), "content.code.encoding"},
		{"program code ref", TypeProgram, prog(`"ref":"`+h2+`"`, `"ref":"x"`), "content.code.ref"},
		{"program missing on", TypeProgram, prog(`"on":{"http":true,"persistent":false,"message":[{"sender":"0xB31B787AdA86c6067701d4C0A250c89C7f1f29A5","channel":"TEST"}]},`, ``), "content.on"},
		{"program ephemeral too big", TypeProgram, prog(`"size_mib":5`, `"size_mib":1001`), "content.volumes[1].size_mib"},
		{"program ephemeral float size", TypeProgram, prog(`"size_mib":5`, `"size_mib":5.0`), "content.volumes[1].size_mib"},
		{"program volume extra", TypeProgram, prog(`"ephemeral":true`, `"ephemeral":true,"x":1`), "content.volumes[1].x"},
		{"program persistence", TypeProgram, prog(`"persistence":"host"`, `"persistence":"cloud"`), "content.volumes[2].persistence"},
		{"program volumes null", TypeProgram, prog(`"volumes":[`, `"volumes":null,"v":[`), "content.volumes"},
		{"program null bool", TypeProgram, prog(`"allow_amend":false`, `"allow_amend":null`), "content.allow_amend"},
		{"program too many variables", TypeProgram, prog(`"allow_amend":false`, `"allow_amend":false,"variables":`+manyVars(MaxVariables+1)), "content.variables"},
		{"program long variable", TypeProgram, prog(`"allow_amend":false`, `"allow_amend":false,"variables":{"K":"`+strings.Repeat("v", MaxVariableValueLen+1)+`"}`), "content.variables.K"},
		{"program variable not string", TypeProgram, prog(`"allow_amend":false`, `"allow_amend":false,"variables":{"K":1}`), "content.variables.K"},
		{"program port", TypeProgram, prog(`"seconds":30`, `"seconds":30,"published_ports":[{"port":70000}]`), "content.resources.published_ports[0].port"},
		{"program bad regex", TypeProgram, prog(`"allow_amend":false`, `"allow_amend":false,"requirements":{"node":{"address_regex":"("}}`), "content.requirements.node.address_regex"},
		{"program subscription keys", TypeProgram, prog(`{"sender":"0xB31B787AdA86c6067701d4C0A250c89C7f1f29A5","channel":"TEST"}`, manyVars(MaxSubscriptionKey+1)), "content.on.message[0]"},
		{"program deep nesting", TypeProgram, prog(`"allow_amend":false`, `"allow_amend":false,"variables":`+strings.Repeat(`{"a":`, 100)+"1"+strings.Repeat("}", 100)), "content.variables.a"},
		{"instance rootfs float", TypeInstance, inst(`"size_mib":20480`, `"size_mib":20480.0`), "content.rootfs.size_mib"},
		{"instance rootfs persistence", TypeInstance, inst(`"persistence":"host"`, `"persistence":"x"`), "content.rootfs.persistence"},
		{"instance hypervisor", TypeInstance, inst(`"hypervisor":"qemu"`, `"hypervisor":"xen"`), "content.environment.hypervisor"},
		{"instance confidential firecracker", TypeInstance, inst(`"hypervisor":"qemu"`, `"hypervisor":"firecracker","trusted_execution":{}`), "content.environment.trusted_execution"},
		{"instance payg without node", TypeInstance, inst(`"node":{"node_hash":"`+h1+`"},"gpu":[{"vendor":"NVIDIA","device_name":"RTX","device_class":"0300","device_id":"10de:2684"}]`, `"cpu":{"architecture":"x86_64"}`), "content.requirements.node.node_hash"},
		{"instance gpu class", TypeInstance, inst(`"device_class":"0300"`, `"device_class":"0100"`), "content.requirements.gpu[0].device_class"},
		{"instance gpu missing field", TypeInstance, inst(`"device_id":"10de:2684"`, `"x":"y"`), "content.requirements.gpu[0].device_id"},
		{"instance terms without payg", TypeInstance, inst(`"type":"superfluid"`, `"type":"hold"`), ""},
		{"instance extra", TypeInstance, inst(`"volumes":[]`, `"volumes":[],"code":{}`), "content.code"},
		{"instance authorized key long", TypeInstance, inst(`"ssh-ed25519 AAAA test"`, `"`+strings.Repeat("k", MaxAuthorizedKeyLen+1)+`"`), "content.authorized_keys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseContent(tt.typ, []byte(tt.raw))
			if tt.field == "" { // a valid variant, kept to show the neighbouring rule is not over-eager
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if FieldOf(err) != tt.field || CodeOf(err) != CodeInvalidFormat {
				t.Errorf("error %q: field %q code %d, want field %q code 0", err, FieldOf(err), CodeOf(err), tt.field)
			}
		})
	}
}

func manyVars(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestContentAccepts(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		raw  string
	}{
		{"store extras ignored", TypeStore, `{"address":"0xA","time":1.0,"item_type":"ipfs","item_hash":"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH","mime_type":"text/plain","extra_fields":{"a":1}}`},
		{"post ref object", TypePost, `{"address":"0xA","time":1.0,"type":"amend","ref":{"item_hash":"` + h1 + `","chain":"ETH"}}`},
		{"post null content", TypePost, `{"address":"0xA","time":1.0,"type":"x","content":null}`},
		{"aggregate key object", TypeAggregate, `{"address":"0xA","time":1.0,"key":{"name":"k"},"content":{"a":null}}`},
		{"forget aggregates", TypeForget, `{"address":"0xA","time":1.0,"hashes":["` + h1 + `"],"aggregates":["` + h2 + `"],"reason":"None"}`},
		{"program metadata array", TypeProgram, strings.Replace(programJSON, `"allow_amend":false`, `"allow_amend":false,"metadata":[]`, 1)},
		{"integral float for int", TypeProgram, strings.Replace(programJSON, `"vcpus":1`, `"vcpus":1.0`, 1)},
		{"max content time", TypePost, `{"address":"0xA","time":9223372036.0,"type":"t"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, tt.typ, tt.raw)
		})
	}
	a := mustParse(t, TypeAggregate, tests[3].raw).(*AggregateContent)
	if !a.Key.Object || a.Key.Name != "k" {
		t.Errorf("key = %+v", a.Key)
	}
	p := mustParse(t, TypePost, tests[1].raw).(*PostContent)
	if p.Ref.Hash != h1 {
		t.Errorf("ref = %+v", p.Ref)
	}
}

func TestNonInlineContentDefaults(t *testing.T) {
	m := &Message{Chain: ChainETH, Sender: "0xSENDER", Type: TypePost, Time: TimeFromSeconds(1700000000.25), ItemType: ItemStorage}
	c, err := m.DecodeContent([]byte(`{"type":"t","content":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Base(); b.Address != "0xSENDER" || b.Time != 1700000000.25 {
		t.Errorf("defaults not filled: %+v", b)
	}
	m.ItemType = ItemInline
	if _, err := m.DecodeContent([]byte(`{"type":"t"}`)); FieldOf(err) != "content.address" {
		t.Errorf("inline content without address: %v", err)
	}
}

// fixedSigner is a stand-in signer: the chain packages test real signatures.
type fixedSigner struct{ addr string }

func (s fixedSigner) Chain() Chain    { return ChainETH }
func (s fixedSigner) Address() string { return s.addr }
func (s fixedSigner) Sign(buf []byte) (string, error) {
	return "sig:" + HashContent(buf), nil
}

type memUploader map[string][]byte

func (u memUploader) UploadContent(_ context.Context, engine ItemType, b []byte) (string, error) {
	if engine != ItemStorage {
		return "", errors.New("only storage")
	}
	h := HashContent(b)
	u[h] = b
	return h, nil
}

func TestBuilderPythonForm(t *testing.T) {
	// clients.md §3.6(f): the Python SDK's bytes for this content.
	b := &Builder{Signer: fixedSigner{"0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"}, ASCII: true,
		Now: func() time.Time { return time.Unix(1700000000, 0) }}
	c := &PostContent{Type: "test", Content: json.RawMessage(`{"body": "Hello"}`)}
	built, err := b.Build(context.Background(), TypePost, c, "TEST")
	if err != nil {
		t.Fatal(err)
	}
	m := built.Message
	wantContent := `{"address":"0x85E1365dE7394f86d71d9F2e707Fbce2B5383770","time":1700000000.0,"type":"test","content":{"body":"Hello"}}`
	if m.ItemContent != wantContent {
		t.Errorf("item_content = %s\nwant %s", m.ItemContent, wantContent)
	}
	if m.ItemHash != "1e6752c957d86bd22b16668fd2ddc0231af431e8879d22bbcf23d19c5cd676e3" {
		t.Errorf("item_hash = %s", m.ItemHash)
	}
	if m.Time.String() != "1700000000.0" || m.Channel != "TEST" || m.ItemType != ItemInline {
		t.Errorf("envelope = %+v", m)
	}
	if m.Signature != "sig:"+HashContent(m.VerificationBuffer()) {
		t.Errorf("signature does not cover the buffer")
	}
	out, _ := json.Marshal(m)
	back, err := Parse(out)
	if err != nil || *back != *m {
		t.Errorf("built message does not round-trip: %v", err)
	}
}

func TestBuilderEveryType(t *testing.T) {
	persistent := false
	contents := map[Type]Content{
		TypePost:      &PostContent{Type: "note", Content: json.RawMessage(`{"t":"héllo <&>"}`), Ref: RefString(h1)},
		TypeAggregate: &AggregateContent{Key: AggregateKey{Name: "profile"}, Content: json.RawMessage(`{"name":"x","score":1.5}`)},
		TypeStore:     &StoreContent{ItemType: ItemStorage, ItemHash: h1, Payment: &Payment{Chain: ChainETH, Type: PaymentHold}},
		TypeForget:    &ForgetContent{Hashes: []string{h1}, Aggregates: []string{}},
		TypeProgram: &ProgramContent{Type: ProgramTypeVMFunction,
			ExecutableHead: ExecutableHead{Variables: map[string]string{"A": "1"}},
			ExecutableTail: ExecutableTail{Resources: MachineResources{VCPUs: 1, Memory: 256, Seconds: 30}, Volumes: []MachineVolume{
				{Ephemeral: &EphemeralVolume{Mount: "/tmp", Ephemeral: true, SizeMiB: 10}}}},
			Code:    CodeContent{Encoding: EncodingZip, Entrypoint: "main:app", Ref: h1, UseLatest: true},
			Runtime: FunctionRuntime{Ref: h2, UseLatest: true, Comment: "Official aleph.im runtime"},
			On:      FunctionTriggers{HTTP: true, Persistent: &persistent}},
		TypeInstance: &InstanceContent{
			ExecutableHead: ExecutableHead{AuthorizedKeys: []string{"ssh-ed25519 AAAA"}},
			ExecutableTail: ExecutableTail{Resources: MachineResources{VCPUs: 1, Memory: 2048, Seconds: 30}, Volumes: []MachineVolume{}},
			RootFS:         RootFSVolume{Parent: VolumeParent{Ref: h2, UseLatest: true}, Persistence: "host", SizeMiB: 20480}},
	}
	b := &Builder{Signer: fixedSigner{"0xB"}}
	for typ, c := range contents {
		built, err := b.Build(context.Background(), typ, c, "")
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		out, _ := json.Marshal(built.Message)
		m, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: built message rejected: %v\n%s", typ, err, out)
		}
		c2, err := m.DecodeContent([]byte(m.ItemContent))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(c2)
		first, _ := json.Marshal(c)
		if string(again) != string(first) {
			t.Errorf("%s: content changed through a round trip:\n%s\n%s", typ, first, again)
		}
	}
	if strings.Contains(contents[TypePost].(*PostContent).Address, "\\u") {
		t.Error("address escaped")
	}
}

func TestBuilderLargeContentGoesToStorage(t *testing.T) {
	up := memUploader{}
	b := &Builder{Signer: fixedSigner{"0xB"}, Uploader: up}
	big := &PostContent{Type: "big", Content: json.RawMessage(`"` + strings.Repeat("x", InlineThreshold) + `"`)}
	built, err := b.Build(context.Background(), TypePost, big, "")
	if err != nil {
		t.Fatal(err)
	}
	m := built.Message
	if m.ItemType != ItemStorage || m.ItemContent != "" || string(up[m.ItemHash]) != string(built.Content) {
		t.Fatalf("large content not moved to storage: %+v", m)
	}
	if _, err := m.DecodeContent(up[m.ItemHash]); err != nil {
		t.Errorf("stored content does not decode: %v", err)
	}
	// Just under the threshold stays inline.
	small := &PostContent{BaseContent: BaseContent{Address: "0xB", Time: 1}, Type: "s"}
	raw, _ := pyjson.Marshal(small)
	pad := InlineThreshold - 1 - len(raw) - len(`,"content":""`)
	small.Content = json.RawMessage(`"` + strings.Repeat("y", pad) + `"`)
	built, err = b.Build(context.Background(), TypePost, small, "")
	if err != nil || built.Message.ItemType != ItemInline || len(built.Content) != InlineThreshold-1 {
		t.Errorf("content of %d chars: item_type %s, err %v", len(built.Content), built.Message.ItemType, err)
	}
	// The ipfs engine needs an uploader that can compute CIDs.
	b2 := &Builder{Signer: fixedSigner{"0xB"}, Engine: ItemIPFS, NoInline: true}
	if _, err := b2.Build(context.Background(), TypePost, &PostContent{Type: "x"}, ""); !errors.Is(err, ErrNeedUploader) {
		t.Errorf("ipfs without uploader: %v", err)
	}
}

func TestBuilderRejectsBadContent(t *testing.T) {
	b := &Builder{Signer: fixedSigner{"0xB"}}
	if _, err := b.Build(context.Background(), TypePost, &AggregateContent{}, ""); FieldOf(err) != "content" {
		t.Errorf("mismatched type: %v", err)
	}
	_, err := b.Build(context.Background(), TypeForget, &ForgetContent{Hashes: []string{"bad"}}, "")
	if FieldOf(err) != "content.hashes[0]" {
		t.Errorf("bad forget: %v", err)
	}
}
