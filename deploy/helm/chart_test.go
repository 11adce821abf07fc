package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// helmModule is the helm `go run` builds when $HELM is unset; go caches
// the binary, so only the first run compiles it.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.2"

// required are the values the chart cannot default (it fails without
// them): the "default values" case is values.yaml plus these.
var required = []string{
	"--set", "database.url=postgres://eddy:secret@db:5432/eddy",
	"--set", "objectStore.bucket=eddy-data",
	"--set", "secrets.secretsKey=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}

// helmCmd is helm with args, run in this directory: $HELM, or helm
// built by go run. The first build takes minutes, hence the long timeout.
func helmCmd(t *testing.T, args ...string) *exec.Cmd {
	name, pre := os.Getenv("HELM"), []string(nil)
	if name == "" {
		name, pre = "go", []string{"run", helmModule}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, append(pre, args...)...)
	// helm must not reach for a cluster or a repository.
	cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null", "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	return cmd
}

// helm runs helm with args and returns its stdout.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := helmCmd(t, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

func TestChart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", required},
		{"ha", []string{"-f", "examples/ha.yaml"}},
		{"autoscale", append([]string{"-f", "examples/autoscale.yaml"}, required...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := helm(t, append([]string{"lint", "--strict", "eddy"}, tc.args...)...)
			t.Logf("helm lint: %s", bytes.TrimSpace(out))
			rendered := helm(t, append([]string{"template", "eddy", "eddy", "--namespace", "streams"}, tc.args...)...)
			objs := decodeAll(t, rendered)
			checkChart(t, tc.name, objs)
		})
	}
}

// TestChartRefuses: values the chart cannot run with fail the render,
// rather than render pods that crash or misbehave.
func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no database, bucket or key", nil, "is required"},
		{"plaintext not acknowledged", append([]string{"--set", "broker.allowPlaintext=false"}, required...), "broker.tls.secretName is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helmCmd(t, append([]string{"template", "eddy", "eddy"}, tc.args...)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("helm template: %v, want an error saying %q\n%s", err, tc.want, out)
			}
		})
	}
}

// object is one rendered object, decoded into its typed struct.
type object struct {
	kind, name string
	obj        any
}

// kinds maps apiVersion/kind to a new typed object to decode into; a kind
// missing here fails the test, so a new template brings its type along.
var kinds = map[string]func() any{
	"v1/ConfigMap":                             func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                                func() any { return new(corev1.Secret) },
	"v1/Service":                               func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                        func() any { return new(corev1.ServiceAccount) },
	"apps/v1/StatefulSet":                      func() any { return new(appsv1.StatefulSet) },
	"apps/v1/Deployment":                       func() any { return new(appsv1.Deployment) },
	"batch/v1/Job":                             func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":            func() any { return new(policyv1.PodDisruptionBudget) },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return new(rbacv1.Role) },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return new(rbacv1.RoleBinding) },
	"monitoring.coreos.com/v1/ServiceMonitor":  func() any { return new(monitoringv1.ServiceMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule":  func() any { return new(monitoringv1.PrometheusRule) },
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeAll splits helm template's output into documents and decodes each
// strictly: unknown or duplicate fields are errors.
func decodeAll(t *testing.T, rendered []byte) []object {
	t.Helper()
	var out []object
	for _, doc := range docSep.Split(string(rendered), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head metav1.TypeMeta
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("metadata: %v\n%s", err, doc)
		}
		key := head.APIVersion + "/" + head.Kind
		mk, ok := kinds[key]
		if !ok {
			t.Errorf("%s %s: no typed struct to validate it against (add it to kinds)", key, meta.Metadata.Name)
			continue
		}
		obj := mk()
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("%s %s: %v\n%s", head.Kind, meta.Metadata.Name, err, doc)
			continue
		}
		out = append(out, object{head.Kind, meta.Metadata.Name, obj})
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// checkChart checks what strict decoding cannot: the objects refer to
// each other correctly and carry what the brief of the chart promises.
func checkChart(t *testing.T, name string, objs []object) {
	t.Helper()
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.kind] = append(byKind[o.kind], o)
	}
	var podLabels []map[string]string
	var sts *appsv1.StatefulSet
	var cp *appsv1.Deployment
	for _, o := range byKind["StatefulSet"] {
		sts = o.obj.(*appsv1.StatefulSet)
		checkWorkload(t, o.name, sts.Spec.Selector, sts.Spec.Template)
		podLabels = append(podLabels, sts.Spec.Template.Labels)
	}
	for _, o := range byKind["Deployment"] {
		cp = o.obj.(*appsv1.Deployment)
		checkWorkload(t, o.name, cp.Spec.Selector, cp.Spec.Template)
		podLabels = append(podLabels, cp.Spec.Template.Labels)
	}
	if sts == nil || cp == nil {
		t.Fatalf("want a broker StatefulSet and a control-plane Deployment, got %v", byKind)
	}
	if got := *cp.Spec.Replicas; got < 2 {
		t.Errorf("control plane: %d replicas, want 2 or more", got)
	}
	if name == "ha" {
		if *sts.Spec.Replicas != 3 {
			t.Errorf("ha: %d brokers, want 3", *sts.Spec.Replicas)
		}
		zoneStrict := false
		for _, c := range sts.Spec.Template.Spec.TopologySpreadConstraints {
			zoneStrict = zoneStrict || c.TopologyKey == "topology.kubernetes.io/zone" && c.WhenUnsatisfiable == corev1.DoNotSchedule
		}
		if !zoneStrict {
			t.Error("ha: brokers are not spread strictly across zones")
		}
		if len(sts.Spec.VolumeClaimTemplates) != 1 {
			t.Error("ha: brokers have no volume claim template")
		}
		for _, k := range []string{"ServiceMonitor", "PrometheusRule"} {
			if len(byKind[k]) == 0 {
				t.Errorf("ha: no %s", k)
			}
		}
		checkDashboards(t, byKind["ConfigMap"])
		for _, o := range byKind["PrometheusRule"] {
			if n := len(o.obj.(*monitoringv1.PrometheusRule).Spec.Groups); n == 0 {
				t.Error("PrometheusRule has no rule groups")
			}
		}
	}
	if name == "autoscale" {
		if len(byKind["Role"]) != 1 || len(byKind["RoleBinding"]) != 1 {
			t.Errorf("autoscale: %d Roles and %d RoleBindings, want the scaler's one each", len(byKind["Role"]), len(byKind["RoleBinding"]))
		}
		for _, o := range byKind["Role"] {
			for _, r := range o.obj.(*rbacv1.Role).Rules {
				if len(r.Resources) != 1 || r.Resources[0] != "statefulsets/scale" || len(r.ResourceNames) != 1 || r.ResourceNames[0] != sts.Name {
					t.Errorf("autoscaler role grants %v on %v, want only the brokers' statefulsets/scale", r.Verbs, r.Resources)
				}
			}
		}
		if !*cp.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Error("autoscale: the control plane has no service account token to call the API with")
		}
	} else if len(byKind["Role"]) != 0 {
		t.Errorf("%s: RBAC granted without the autoscaler", name)
	}

	broker := sts.Spec.Template.Spec.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range broker.Env {
		env[e.Name] = e
	}
	if env["EDDY_ID_FROM_HOSTNAME"].Value != "true" {
		t.Error("brokers do not take their id from the pod ordinal")
	}
	if !strings.HasPrefix(env["EDDY_ADVERTISE"].Value, "$(POD_NAME)."+sts.Spec.ServiceName+".") {
		t.Errorf("brokers advertise %q, want their per-pod name in %s", env["EDDY_ADVERTISE"].Value, sts.Spec.ServiceName)
	}
	if _, ok := env["POD_NAME"]; !ok {
		t.Error("EDDY_ADVERTISE refers to $(POD_NAME), which is not defined")
	}
	if d := env["EDDY_DATABASE_URL"]; d.ValueFrom == nil || d.ValueFrom.SecretKeyRef == nil {
		t.Error("the database URL does not come from a Secret")
	}
	for _, c := range []corev1.Container{broker, cp.Spec.Template.Spec.Containers[0]} {
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/livez" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: probes must be /livez and /readyz", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no resource requests", c.Name)
		}
	}
	if grace := sts.Spec.Template.Spec.TerminationGracePeriodSeconds; grace == nil || *grace < 30 {
		t.Error("brokers need a termination grace period longer than their drain")
	}
	if sc := sts.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("brokers must run as non-root")
	}

	// Every Service and PodDisruptionBudget selects pods the chart runs.
	selects := func(sel labels.Selector) bool {
		for _, l := range podLabels {
			if sel.Matches(labels.Set(l)) {
				return true
			}
		}
		return false
	}
	headless := false
	for _, o := range byKind["Service"] {
		svc := o.obj.(*corev1.Service)
		if !selects(labels.SelectorFromSet(svc.Spec.Selector)) {
			t.Errorf("Service %s selects no pod of the chart", o.name)
		}
		if svc.Name == sts.Spec.ServiceName {
			headless = svc.Spec.ClusterIP == corev1.ClusterIPNone
		}
	}
	if !headless {
		t.Errorf("no headless Service %s for the brokers", sts.Spec.ServiceName)
	}
	pdbs := 0
	for _, o := range byKind["PodDisruptionBudget"] {
		sel, err := metav1.LabelSelectorAsSelector(o.obj.(*policyv1.PodDisruptionBudget).Spec.Selector)
		if err != nil || !selects(sel) {
			t.Errorf("PodDisruptionBudget %s selects no pod of the chart (%v)", o.name, err)
		}
		pdbs++
	}
	if pdbs != 2 {
		t.Errorf("%d PodDisruptionBudgets, want one each for brokers and control plane", pdbs)
	}

	jobs := byKind["Job"]
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs, want the migrations Job", len(jobs))
	}
	job := jobs[0].obj.(*batchv1.Job)
	if hook := job.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
		t.Errorf("migrations Job hook %q, want pre-install,pre-upgrade", hook)
	}
	if args := job.Spec.Template.Spec.Containers[0].Args; len(args) != 1 || args[0] != "migrate" {
		t.Errorf("migrations Job runs %v, want eddy migrate", args)
	}
}

// checkWorkload: the selector matches the pod template's labels.
func checkWorkload(t *testing.T, name string, sel *metav1.LabelSelector, tpl corev1.PodTemplateSpec) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || !s.Matches(labels.Set(tpl.Labels)) {
		t.Errorf("%s: selector %v does not match its pods' labels %v (%v)", name, sel, tpl.Labels, err)
	}
}

// checkDashboards: every dashboard under deploy/grafana is one ConfigMap
// the Grafana sidecar picks up (its label), holding that dashboard as
// valid JSON with its own uid.
func checkDashboards(t *testing.T, cms []object) {
	t.Helper()
	files, err := filepath.Glob("../grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards under deploy/grafana: %v", err)
	}
	got := map[string]string{} // file name -> uid
	for _, o := range cms {
		cm := o.obj.(*corev1.ConfigMap)
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		for name, body := range cm.Data {
			var d struct {
				UID    string `json:"uid"`
				Panels []any  `json:"panels"`
			}
			if err := json.Unmarshal([]byte(body), &d); err != nil || d.UID == "" || len(d.Panels) == 0 {
				t.Errorf("ConfigMap %s: %s is not a dashboard (uid %q, %d panels, %v)", cm.Name, name, d.UID, len(d.Panels), err)
			}
			got[name] = d.UID
		}
	}
	for _, f := range files {
		if _, ok := got[filepath.Base(f)]; !ok {
			t.Errorf("dashboard %s is in no ConfigMap (has files/dashboards a link to it?)", filepath.Base(f))
		}
	}
	if len(got) != len(files) {
		t.Errorf("%d dashboards in ConfigMaps, %d under deploy/grafana", len(got), len(files))
	}
}
